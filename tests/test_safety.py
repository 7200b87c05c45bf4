"""Safety: configs never execute code, input data is only ever text, rejected rows keep the raw input inert."""

from __future__ import annotations

import json
import os

import pytest

from seqbeam.pipelines import preprocess
from seqbeam.configs.schema import ConfigError, load_config

from conftest import EMOJI_CLASSES, read_rejected

# Strings that would do something if anything parsed, templated, evaluated or rendered them.
PAYLOADS = [
    "__import__('os').system('touch PWNED')",
    "!!python/object/apply:os.system ['touch PWNED']",
    "{{ 7 * 7 }} ${jndi:ldap://x} $(touch PWNED) `touch PWNED`",
    "<script>alert(1)</script>",
    "'; DROP TABLE predictions; --",
    "\\x00 not a NUL, a backslash",
]


def write_yaml(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_configs_and_overrides_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tagged = write_yaml(tmp_path / "evil.yaml", "task: !!python/object/apply:os.system ['touch PWNED']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tagged)
    plain = write_yaml(tmp_path / "ok.yaml", "task: {name: t, kind: lm}\ndata: {format: text, path: x.txt}\n")
    with pytest.raises(ConfigError):
        load_config(plain, ["output_dir=!!python/object/apply:os.system ['touch PWNED']"])
    # A value that looks like code stays a string.
    config = load_config(plain, ["output_dir=__import__('os').system('touch PWNED')"])
    assert config.output_dir == "__import__('os').system('touch PWNED')"
    assert not os.path.exists(tmp_path / "PWNED")


def test_input_text_is_stored_verbatim_and_never_interpreted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "corpus.jsonl"
    with open(corpus, "w", encoding="utf-8") as f:
        for i, payload in enumerate(PAYLOADS):
            f.write(json.dumps({"id": f"ok-{i}", "text": payload, "label": i % 5}) + "\n")
            f.write(json.dumps({"id": f"bad-{i}", "text": payload, "label": payload}) + "\n")  # bad label
    config = load_config(write_yaml(tmp_path / "c.yaml", json.dumps({
        "task": {"name": "emoji", "kind": "classifier", "classes": EMOJI_CLASSES},
        "data": {"format": "jsonl", "path": str(corpus), "text_column": "text", "label_column": "label",
                 "id_column": "id"},
        "preprocess": {"num_shards": 1, "splits": {"train": 1.0, "valid": 0.0, "test": 0.0}},
        "output_dir": str(tmp_path / "out"),
    })))
    metadata = preprocess.run_config(config, save_main_session=False)
    assert metadata["rows"] == {"in": 12, "train": 6, "valid": 0, "test": 0, "rejected": 6}
    rejected = read_rejected(str(tmp_path / "out" / "emoji" / "data" / "rejected"))  # Parquet, as every job writes
    by_id = {r["id"]: r for r in rejected}
    for i, payload in enumerate(PAYLOADS):
        # The raw input is kept as the text it was (JSON fields joined by a tab), codes are fixed names.
        assert by_id[f"bad-{i}"]["raw"] == f"{payload}\t{payload}" and by_id[f"bad-{i}"]["code"] == "bad_label"
    assert not os.path.exists(tmp_path / "PWNED")
