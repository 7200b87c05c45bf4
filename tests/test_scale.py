"""Scale-out: the readers split one big file over every worker, and the jobs keep them all busy.

Parallelism is counted, not timed: rows are tagged with the pid of the worker process that
read them (readers), or the jobs' own progress lines, which name their worker, are summed
per process (preprocessing: the vocabulary and the encoding pass; inference: the model
calls). Each run on ``--direct_running_mode=multi_processing --direct_num_workers=4`` is
checked against the same run in-process: same rows, examples, vocabularies, predictions.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import logging
import os
import random
import re
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqbeam.pipelines import infer, layout, preprocess, serving
from seqbeam.configs.schema import DataConfig, config_from_dict
from seqbeam.pipelines.options import pipeline_options
from seqbeam.transforms.readers import ReadCorpus
from seqbeam.transforms.records import rows_of

from conftest import EMOJI_CLASSES, EMOJI_FILLER, EMOJI_KEYWORDS, read_examples

pytestmark = pytest.mark.slow  # four worker processes per run, 20,000 rows

WORKERS = 4
FOUR_WORKERS = ["--direct_running_mode=multi_processing", f"--direct_num_workers={WORKERS}"]
ROWS = 20_000


def sentences(count: int, seed: int = 0) -> list[tuple[str, int]]:
    """``(sentence, label)`` pairs whose label is given by one keyword each (emoji-like)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        label = rng.randrange(len(EMOJI_CLASSES))
        words = rng.sample(EMOJI_FILLER, 4) + [rng.choice(EMOJI_KEYWORDS[label])]
        rng.shuffle(words)
        out.append((" ".join(words), label))
    return out


def write_lines(path: Path, lines: list[str], newline: str = "\n", bom: bool = False, final_break: bool = True) -> str:
    data = newline.join(lines) + (newline if final_break else "")
    payload = (b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return str(path)


def corpus_files(folder: Path, fmt: str, rows: list[tuple[str, int]], files: int = 1) -> str:
    """``rows`` as ``files`` files of format ``fmt`` under ``folder``; returns the path or glob."""
    parts = [rows[i::files] for i in range(files)]
    for index, part in enumerate(parts):
        name = folder / f"part-{index}.{fmt}"
        if fmt == "csv":  # a header, CRLF, a BOM, no final line break
            write_lines(name, ["sentence,label"] + [f"{s},{label}" for s, label in part], newline="\r\n", bom=True,
                        final_break=False)
        elif fmt == "jsonl":
            write_lines(name, [json.dumps({"sentence": s, "label": label}) for s, label in part])
        else:
            write_lines(name, [s for s, _ in part], newline="\r\n" if index % 2 else "\n")
    return str(folder / f"part-*.{fmt}") if files > 1 else str(folder / f"part-0.{fmt}")


def data_config(fmt: str, path: str) -> DataConfig:
    if fmt == "text":
        return DataConfig(format="text", path=path)
    return DataConfig(format=fmt, path=path, text_column="sentence", label_column="label")


# ------------------------------------------------------------------------------ readers


def read_cases(tmp_path: Path) -> dict[str, DataConfig]:
    """One corpus per reader format and layout, each large enough to be split into several ranges."""
    rows = sentences(ROWS, seed=1)
    cases = {f"{fmt}-{files}": data_config(fmt, corpus_files(tmp_path / f"{fmt}{files}", fmt, rows, files))
             for fmt in ("text", "csv", "jsonl") for files in (1, 4)}
    tsv = write_lines(tmp_path / "pairs.tsv", [f"{s}\t{s.upper()}\tCC-BY" for s, _ in rows[:8000]] + ["", "lonely"])
    cases["tsv"] = DataConfig(format="tsv", path=tsv, header=False, text_column=0, target_column=1)
    anki = write_lines(tmp_path / "spa.txt", [f'"{s}"\t{s[::-1]}' for s, _ in rows[:8000]], newline="\r")
    cases["anki"] = DataConfig(format="anki", path=anki)
    gz = write_lines(tmp_path / "names.txt.gz", [s for s, _ in rows[:5000]])
    cases["gzip"] = DataConfig(format="text", path=gz)
    source = write_lines(tmp_path / "corpus.en", [s for s, _ in rows[:3000]] + ["one more"])
    target = write_lines(tmp_path / "corpus.es", [s[::-1] for s, _ in rows[:3000]])
    cases["aligned"] = DataConfig(format="aligned", path=source, target_path=target)
    table = pa.table({"sentence": [s for s, _ in rows[:6000]] + [None], "label": [label for _, label in rows[:6000]] + [1]})
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=500)
    cases["parquet"] = DataConfig(format="parquet", path=str(tmp_path / "rows.parquet"), text_column="sentence",
                                  label_column="label")
    return cases


def read_everything(cases: dict[str, DataConfig], out: Path, beam_args: list[str]) -> None:
    """Reads every case in one pipeline; each row and rejection is written as JSON with its reader's pid."""
    with beam.Pipeline(options=pipeline_options(beam_args, save_main_session=False)) as p:
        for name, data in cases.items():
            read = p | f"Read-{name}" >> ReadCorpus(data, batch_size=256)
            rows = read["batches"] | f"Rows-{name}" >> beam.FlatMap(
                lambda batch: [json.dumps([row.id, row.text, row.target, row.label, os.getpid()])
                               for row in rows_of(batch)])
            rejected = read["rejected"] | f"Rejected-{name}" >> beam.Map(
                lambda record: json.dumps([record["id"], record["code"], record["raw"]]))
            rows | f"WriteRows-{name}" >> beam.io.WriteToText(str(out / name / "rows"))
            rejected | f"WriteRejected-{name}" >> beam.io.WriteToText(str(out / name / "rejected"))


def written(folder: Path, what: str) -> list[list]:
    return [json.loads(line) for path in glob.glob(str(folder / f"{what}-*")) for line in open(path, encoding="utf-8")]


def shares(counts: collections.Counter) -> list[float]:
    total = sum(counts.values())
    return sorted((n / total for n in counts.values()), reverse=True)


def test_readers_split_big_files_over_four_workers_and_read_every_row_once(tmp_path):
    cases = read_cases(tmp_path)
    read_everything(cases, tmp_path / "one", [])
    read_everything(cases, tmp_path / "four", FOUR_WORKERS)
    for name in cases:
        alone, spread = (written(tmp_path / run / name, "rows") for run in ("one", "four"))
        assert sorted(r[:4] for r in spread) == sorted(r[:4] for r in alone), name
        assert len({r[0] for r in spread}) == len(spread), f"{name}: a row was read twice"
        assert sorted(map(tuple, written(tmp_path / "four" / name, "rejected"))) == sorted(
            map(tuple, written(tmp_path / "one" / name, "rejected"))), name
        if name.split("-")[0] in ("text", "csv", "jsonl"):
            assert len(alone) == ROWS, name
            by_worker = collections.Counter(r[4] for r in spread)
            assert len(by_worker) >= 3 and shares(by_worker)[0] <= 0.5, f"{name}: rows per worker {by_worker}"
    assert sorted(r[1] for r in written(tmp_path / "one" / "tsv", "rejected")) == ["empty_line", "missing_column"]
    assert [r[1] for r in written(tmp_path / "one" / "aligned", "rejected")] == ["unaligned"]
    assert [r[1] for r in written(tmp_path / "one" / "parquet", "rejected")] == ["missing_value"]


# ------------------------------------------------------------------------------ the jobs


def progress_by_worker(records: list[logging.LogRecord], job: str) -> collections.Counter:
    """Rows per worker process from the jobs' progress lines (each worker's last count, summed per pid)."""
    last: dict[tuple[str, str], int] = {}
    pattern = re.compile(rf"progress {job}: (\d+) rows by worker (\d+)/(\d+)")
    for record in records:
        for match in pattern.finditer(record.getMessage()):
            key = (match.group(2), match.group(3))
            last[key] = max(last.get(key, 0), int(match.group(1)))
    by_pid: collections.Counter = collections.Counter()
    for (pid, _), rows in last.items():
        by_pid[pid] += rows
    return by_pid


def assert_spread(by_worker: collections.Counter, rows: int, what: str) -> None:
    assert sum(by_worker.values()) == rows, f"{what}: {by_worker}"
    assert len(by_worker) >= 3 and shares(by_worker)[0] <= 0.5, f"{what}: rows per worker {by_worker}"


def emoji_config(path: str, fmt: str, out: Path):
    data = {"format": fmt, "path": path, **({} if fmt == "text" else {"text_column": "sentence",
                                                                       "label_column": "label"})}
    task = ({"name": "names", "kind": "lm"} if fmt == "text"
            else {"name": "emoji", "kind": "classifier", "classes": EMOJI_CLASSES})
    return config_from_dict({"task": task, "data": data, "output_dir": str(out),
                             "preprocess": {"max_length": 8, "num_shards": 0, "batch_size": 256}})


def vocabulary_files(config) -> dict[str, str]:
    folder = Path(layout.data_dir(config)) / "vocab"
    return {path.name: path.read_text(encoding="utf-8") for path in folder.iterdir()}


def all_examples(config) -> list[dict]:
    return [example for split in ("train", "valid", "test") for example in read_examples(layout.data_dir(config),
                                                                                           split)]


@pytest.mark.parametrize("fmt, files", [("jsonl", 1), ("csv", 4), ("text", 1)])
def test_preprocess_keeps_four_workers_busy_and_writes_what_one_writes(tmp_path, caplog, monkeypatch, fmt, files):
    monkeypatch.setenv("SEQBEAM_PROGRESS_EVERY", "1")  # a line per batch: exact counts per worker
    caplog.set_level(logging.INFO)
    path = corpus_files(tmp_path / "corpus", fmt, sentences(ROWS), files)
    alone = emoji_config(path, fmt, tmp_path / "one")
    spread = emoji_config(path, fmt, tmp_path / "four")
    preprocess.run_config(alone, save_main_session=False)
    caplog.clear()
    metadata = preprocess.run_config(spread, FOUR_WORKERS, save_main_session=False)
    assert metadata["rows"]["in"] == ROWS
    assert_spread(progress_by_worker(caplog.records, "vocabulary"), ROWS, "vocabulary pass")
    assert_spread(progress_by_worker(caplog.records, "preprocess"), ROWS, "encoding pass")
    assert vocabulary_files(spread) == vocabulary_files(alone)
    assert all_examples(spread) == all_examples(alone)


def test_infer_keeps_four_workers_busy_and_predicts_what_one_predicts(tmp_path, caplog, monkeypatch, shared_emoji):
    monkeypatch.setenv("SEQBEAM_PROGRESS_EVERY", "1")
    caplog.set_level(logging.INFO)
    trained = shared_emoji.config  # the session's small emoji classifier, trained once
    path = corpus_files(tmp_path / "corpus", "csv", sentences(ROWS, seed=2))
    configs = {}
    for run in ("one", "four"):
        configs[run] = config_from_dict({
            **trained.to_dict(), "output_dir": str(tmp_path / run),
            "infer": {"input": {"format": "csv", "path": path, "text_column": "sentence"},
                      "model_path": serving.plan_serving(trained).model_path, "num_shards": 0}})
    infer.run_config(configs["one"], save_main_session=False)
    caplog.clear()
    summary = infer.run_config(configs["four"], FOUR_WORKERS, save_main_session=False)
    assert summary["rows"]["in"] == summary["rows"]["out"] == ROWS
    assert_spread(progress_by_worker(caplog.records, "infer"), ROWS, "model calls")

    def predictions(run):
        table = pq.read_table(layout.predictions_dir(configs[run]))
        return sorted(zip(table.column("id").to_pylist(), table.column("emojified_text").to_pylist()))

    assert predictions("four") == predictions("one")
