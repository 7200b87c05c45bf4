"""Tests for task configuration loading and validation (configs/schema.py)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from seqbeam.configs.schema import (
    Config,
    ConfigError,
    DataConfig,
    GeneratorConfig,
    config_from_dict,
    load_config,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
CONFIG_FILES = sorted(CONFIGS.glob("*.yaml"))

EMOJI = {
    "task": {"name": "emoji", "kind": "classifier", "classes": ["a", "b", "c"]},
    "data": {"format": "csv", "path": "data/emoji.csv", "text_column": "sentence", "label_column": "label"},
    "preprocess": {
        "tokenizer": {"level": "word", "lowercase": True},
        "source_vocab": {"max_size": 1000},
        "max_length": 16,
        "splits": {"train": 0.8, "valid": 0.1, "test": 0.1},
    },
    "output_dir": "runs/test",
}


DELETE = object()


def emoji(**changes) -> dict:
    """A deep copy of EMOJI with keys set (``a__b`` is ``a.b``; the value DELETE removes the key)."""
    raw = copy.deepcopy(EMOJI)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return raw


def write_yaml(tmp_path: Path, raw: dict, name: str = "task.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def config_error(tmp_path: Path, raw: dict, overrides=()) -> str:
    """The message of the ConfigError that loading ``raw`` from a file raises."""
    path = write_yaml(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert path in message, f"the file is not named in: {message}"
    return message


# --- the shipped configs ------------------------------------------------------------


def test_there_are_configs():
    assert {p.stem for p in CONFIG_FILES} >= {"emoji", "translate", "dates", "names", "reber"}


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_every_shipped_config_loads(path):
    config = load_config(str(path))
    assert isinstance(config, Config)
    assert config.task.name == path.stem
    assert config.task_dir.endswith(f"/{path.stem}")
    # The resolved config round-trips through its own YAML to an equal config.
    again = config_from_dict(yaml.safe_load(config.to_yaml()), source="roundtrip")
    assert again == config
    assert again.hash == config.hash


def test_shipped_config_values():
    emoji_config = load_config(str(CONFIGS / "emoji.yaml"))
    assert emoji_config.task.kind == "classifier"
    assert emoji_config.task.num_classes == 5
    assert emoji_config.data.label_column == "label"
    assert emoji_config.preprocess.max_length == 16
    assert emoji_config.preprocess.source_vocab.vectors == "glove-6b-50d"
    assert emoji_config.train.model.pretrained_vectors == "glove-6b-50d"
    assert emoji_config.train.early_stopping_patience == 0
    dates = load_config(str(CONFIGS / "dates.yaml"))
    assert isinstance(dates.data.generator, GeneratorConfig)
    assert dates.data.generator.seed == 7
    assert dates.preprocess.tokenizer.level == "char"
    assert dates.data.generator.day_first == "both" and dates.infer.day_first is False
    assert 0 < dates.data.generator.real_world_rate < 1


def test_loading_a_valid_dict_and_file(tmp_path):
    config = load_config(write_yaml(tmp_path, EMOJI))
    assert config == config_from_dict(EMOJI)
    assert config.task.classes == ("a", "b", "c")
    assert config.preprocess.source_vocab.max_size == 1000
    # Defaults fill what the file leaves out.
    assert config.preprocess.target_vocab.max_size == 20_000
    assert config.data.header is True


# --- unknown, missing and ill-typed keys --------------------------------------------


def test_unknown_top_level_key(tmp_path):
    message = config_error(tmp_path, emoji(bogus=1))
    assert "'bogus'" in message


def test_unknown_nested_keys(tmp_path):
    assert "'preprocess.tokenizer.casefold'" in config_error(tmp_path, emoji(preprocess__tokenizer__casefold=True))
    assert "'data.lable_column'" in config_error(tmp_path, emoji(data__lable_column="label"))
    assert "'preprocess.splits.holdout'" in config_error(tmp_path, emoji(preprocess__splits__holdout=0.1))


def test_several_unknown_keys_of_mixed_types(tmp_path):
    # YAML keys need not be strings ("1:", "on:"): still a ConfigError, never a TypeError.
    raw = emoji()
    raw[1] = "x"
    raw["zzz"] = "y"
    message = config_error(tmp_path, raw)
    assert "unknown key '1'" in message


def test_missing_required_key(tmp_path):
    assert "'task.kind'" in config_error(tmp_path, emoji(task__kind=DELETE))
    assert "'data'" in config_error(tmp_path, emoji(data=DELETE))
    # null is a value, not an absence: a section cannot be null.
    assert "'preprocess'" in config_error(tmp_path, emoji(preprocess=None))


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"preprocess__max_length": "16"}, "preprocess.max_length"),        # str for int
        ({"preprocess__max_length": 16.5}, "preprocess.max_length"),        # float for int
        ({"preprocess__num_shards": True}, "preprocess.num_shards"),        # bool for int
        ({"data__header": 1}, "data.header"),                               # int for bool
        ({"preprocess__tokenizer__lowercase": "yes please"}, "preprocess.tokenizer.lowercase"),
        ({"data__path": ["a.csv", "b.csv"]}, "data.path"),                  # list for str
        ({"output_dir": 3}, "output_dir"),                                  # int for str
        ({"preprocess__splits__train": "0.8"}, "preprocess.splits.train"),  # str for float
        ({"preprocess__splits__train": True}, "preprocess.splits.train"),   # bool for float
        ({"data__label_column": ["label"]}, "data.label_column"),           # list for str|int|None
        ({"data__text_column": None}, "data.text_column"),                  # null for str|int
        ({"task__classes": "abc"}, "task.classes"),                         # str for a list
        ({"task__classes": ["a", 2]}, "task.classes[1]"),                   # bad item
        ({"preprocess__tokenizer": "word"}, "preprocess.tokenizer"),        # scalar for a section
    ],
)
def test_ill_typed_value_names_the_key(tmp_path, changes, key):
    message = config_error(tmp_path, emoji(**changes))
    assert f"'{key}'" in message


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"task__kind": "regressor"}, "task.kind"),
        ({"data__format": "xlsx"}, "data.format"),
        ({"preprocess__tokenizer__level": "byte"}, "preprocess.tokenizer.level"),
        ({"preprocess__overflow": "wrap"}, "preprocess.overflow"),
        ({"data__quoting": "all"}, "data.quoting"),
    ],
)
def test_bad_literal_choice_names_the_key(tmp_path, changes, key):
    message = config_error(tmp_path, emoji(**changes))
    assert f"'{key}'" in message


def test_int_is_accepted_for_float(tmp_path):
    config = load_config(write_yaml(tmp_path, emoji(preprocess__splits={"train": 1, "valid": 0, "test": 0})))
    assert config.preprocess.splits.train == 1.0
    assert isinstance(config.preprocess.splits.train, float)


def test_positions_are_accepted_as_columns():
    config = config_from_dict(emoji(data__header=False, data__text_column=0, data__label_column=1))
    assert (config.data.text_column, config.data.label_column) == (0, 1)


def test_not_a_mapping_and_missing_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(path))
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.yaml"))


# --- --set overrides ----------------------------------------------------------------


def test_overrides_apply_with_yaml_typing(tmp_path):
    path = write_yaml(tmp_path, EMOJI)
    config = load_config(
        path,
        [
            "preprocess.num_shards=8",
            "data.header=false",
            "data.text_column=0",
            "data.label_column=1",
            "preprocess.tokenizer.lowercase=false",
            "preprocess.target_vocab.max_size=50",   # a section absent from the file
            "preprocess.splits.salt=other",
            "task.classes=[x, y]",
            "data.id_column=null",
            "output_dir=gs://bucket/runs",
        ],
    )
    assert config.preprocess.num_shards == 8 and isinstance(config.preprocess.num_shards, int)
    assert config.data.header is False
    assert (config.data.text_column, config.data.label_column) == (0, 1)
    assert config.preprocess.tokenizer.lowercase is False
    assert config.preprocess.tokenizer.level == "word"  # siblings of an overridden key are kept
    assert config.preprocess.target_vocab.max_size == 50
    assert config.preprocess.splits.salt == "other"
    assert config.preprocess.splits.train == 0.8
    assert config.task.classes == ("x", "y")
    assert config.data.id_column is None
    assert config.task_dir == "gs://bucket/runs/emoji"


def test_override_of_a_generator_key():
    config = load_config(str(CONFIGS / "dates.yaml"), ["data.generator.seed=3", "data.generator.day_first=true"])
    assert config.data.generator.seed == 3
    assert config.data.generator.day_first is True
    assert config.data.generator.num_rows == 60000


@pytest.mark.parametrize("value, expected", [("both", "both"), ("true", True), ("false", False)])
def test_generator_day_first_is_an_order_or_both(value, expected):
    config = load_config(str(CONFIGS / "dates.yaml"), [f"data.generator.day_first={value}"])
    assert config.data.generator.day_first == expected


@pytest.mark.parametrize("override, key", [
    ("data.generator.day_first=maybe", "data.generator.day_first"),
    ("data.generator.day_first=2", "data.generator.day_first"),
    ("data.generator.real_world_rate=1.5", "data.generator.real_world_rate"),
    ("data.generator.noise_rate=lots", "data.generator.noise_rate"),  # in an optional section: its own key
    ("infer.day_first=both", "infer.day_first"),
    ("train.length_window=-1", "train.length_window"),
    ("train.learning_rate_decay=0", "train.learning_rate_decay"),
    ("train.learning_rate_decay=1.5", "train.learning_rate_decay"),
    ("train.model.cell=rnn", "train.model.cell"),
])
def test_date_keys_are_checked_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(str(CONFIGS / "dates.yaml"), [override])


def test_length_window_is_for_seq2seq_models_only(tmp_path):
    raw = emoji(train={"model": {"family": "emojifier_v1"}, "length_window": 8})
    assert "'train.length_window'" in config_error(tmp_path, raw)


def test_override_does_not_hide_an_ill_typed_section(tmp_path):
    message = config_error(tmp_path, emoji(preprocess__tokenizer="word"), ["preprocess.tokenizer.lowercase=false"])
    assert "'preprocess.tokenizer'" in message
    # A null section in the file is simply filled by the override.
    config = load_config(write_yaml(tmp_path, emoji(preprocess__tokenizer=None)), ["preprocess.tokenizer.level=char"])
    assert config.preprocess.tokenizer.level == "char"


def test_override_value_may_contain_equals(tmp_path):
    config = load_config(write_yaml(tmp_path, EMOJI), ["data.path=data/a=b.csv"])
    assert config.data.path == "data/a=b.csv"


def test_override_is_type_checked(tmp_path):
    path = write_yaml(tmp_path, EMOJI)
    with pytest.raises(ConfigError, match=r"'preprocess\.num_shards'") as info:
        load_config(path, ["preprocess.num_shards=many"])
    assert path in str(info.value)
    with pytest.raises(ConfigError, match=r"'data\.header'"):
        load_config(path, ["data.header=2"])
    with pytest.raises(ConfigError, match=r"'preprocess\.overflow'"):
        load_config(path, ["preprocess.overflow=wrap"])


@pytest.mark.parametrize(
    "override, named",
    [
        ("bogus=1", "bogus"),
        ("preprocess.bogus=1", "preprocess.bogus"),
        ("preprocess.tokenizer.casefold=true", "preprocess.tokenizer.casefold"),
        ("task.name.first=x", "task.name.first"),   # a scalar has no sub-keys
    ],
)
def test_unknown_override_key_fails(tmp_path, override, named):
    path = write_yaml(tmp_path, EMOJI)
    with pytest.raises(ConfigError) as info:
        load_config(path, [override])
    assert named in str(info.value)
    assert path in str(info.value)


def test_malformed_override_fails(tmp_path):
    path = write_yaml(tmp_path, EMOJI)
    for override in ("preprocess.num_shards", "=3"):
        with pytest.raises(ConfigError, match="key=value"):
            load_config(path, [override])


# --- semantic checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"preprocess__splits": {"train": 0.5, "valid": 0.1, "test": 0.1}}, "preprocess.splits"),
        ({"preprocess__splits": {"train": 0.0, "valid": 0.5, "test": 0.5}}, "preprocess.splits.train"),
        ({"preprocess__splits": {"train": 1.5, "valid": -0.25, "test": -0.25}}, "preprocess.splits.train"),
        ({"preprocess__source_vocab": {"max_size": 4}}, "preprocess.source_vocab.max_size"),
        ({"preprocess__target_vocab": {"max_size": 3}}, "preprocess.target_vocab.max_size"),
        ({"preprocess__source_vocab": {"min_count": 0}}, "preprocess.source_vocab.min_count"),
        ({"data__label_column": None}, "data.label_column"),
        ({"task__classes": ["only"]}, "task.classes"),
        ({"task__name": ""}, "task.name"),
        ({"task__name": "a/b"}, "task.name"),
        ({"data__path": ""}, "data.path"),
        ({"data__delimiter": ";;"}, "data.delimiter"),
        ({"preprocess__max_length": 0}, "preprocess.max_length"),
        ({"preprocess__max_target_length": 1}, "preprocess.max_target_length"),
        ({"preprocess__num_shards": -1}, "preprocess.num_shards"),
        ({"infer__max_batch_size": 0}, "infer.max_batch_size"),
        ({"infer__min_batch_size": 64, "infer__max_batch_size": 32}, "infer.min_batch_size"),
        ({"infer__length_buckets": [32, 16]}, "infer.length_buckets"),
        ({"infer__length_buckets": [0, 16]}, "infer.length_buckets"),
        ({"infer__emoji_threshold": 1.5}, "infer.emoji_threshold"),
        ({"infer__min_confidence": -0.1}, "infer.min_confidence"),
        ({"infer__num_samples": 0}, "infer.num_samples"),
        ({"infer__output": "dates"}, "infer.output"),
        ({"infer__input": {"format": "csv"}}, "infer.input.path"),
        ({"infer__input": {"format": "generated"}}, "infer.input.generator"),
    ],
)
def test_semantic_checks_name_the_key(tmp_path, changes, key):
    message = config_error(tmp_path, emoji(**changes))
    assert f"'{key}'" in message


def test_infer_section_defaults_and_output_kinds():
    config = config_from_dict(emoji())
    assert config.infer.input is None and config.infer.length_buckets and config.output_kind == "emoji"
    binary = config_from_dict(emoji(task__classes=["no", "yes"], infer__max_batch_size=64))
    assert binary.output_kind == "grammar" and binary.infer.max_batch_size == 64
    with_input = config_from_dict(emoji(infer__input={"format": "text", "path": "in.txt"}, infer__length_buckets=[]))
    assert with_input.infer.input.path == "in.txt" and with_input.infer.length_buckets == ()


def test_aligned_needs_a_target_path():
    raw = {
        "task": {"name": "translate", "kind": "seq2seq"},
        "data": {"format": "aligned", "path": "data/src.en"},
    }
    with pytest.raises(ConfigError, match=r"'data\.target_path'"):
        config_from_dict(raw)
    raw["data"]["target_path"] = "data/tgt.es"
    assert config_from_dict(raw).data.target_path == "data/tgt.es"


def test_seq2seq_csv_needs_a_target_column():
    raw = {"task": {"name": "t", "kind": "seq2seq"}, "data": {"format": "csv", "path": "x.csv"}}
    with pytest.raises(ConfigError, match=r"'data\.target_column'"):
        config_from_dict(raw)


def test_generated_needs_a_generator():
    raw = {"task": {"name": "d", "kind": "seq2seq"}, "data": {"format": "generated"}}
    with pytest.raises(ConfigError, match=r"'data\.generator'"):
        config_from_dict(raw)
    raw["data"]["generator"] = {"name": "dates", "num_rows": 0}
    with pytest.raises(ConfigError, match=r"'data\.generator\.num_rows'"):
        config_from_dict(raw)
    raw["data"]["generator"] = {"name": "dates", "noise_rate": 1.5}
    with pytest.raises(ConfigError, match=r"'data\.generator\.noise_rate'"):
        config_from_dict(raw)


def test_splits_summing_to_one_with_float_noise_pass():
    config = config_from_dict(emoji(preprocess__splits={"train": 0.7, "valid": 0.2, "test": 0.1}))
    assert config.preprocess.splits.valid == 0.2


# --- hash and immutability ----------------------------------------------------------


def test_hash_is_stable_for_equal_configs(tmp_path):
    a = load_config(write_yaml(tmp_path, EMOJI, "a.yaml"))
    b = config_from_dict(copy.deepcopy(EMOJI))
    assert a == b
    assert a.hash == b.hash
    assert len(a.hash) == 16 and int(a.hash, 16) >= 0
    # Spelling defaults out, ints for floats and key order do not change the resolved config.
    spelled = emoji(preprocess__splits={"test": 0.1, "valid": 0.1, "train": 0.8, "salt": "seqbeam"},
                    preprocess__overflow="truncate", data__header=True)
    assert config_from_dict(spelled).hash == a.hash
    ints = config_from_dict(emoji(preprocess__splits={"train": 1, "valid": 0, "test": 0}))
    floats = config_from_dict(emoji(preprocess__splits={"train": 1.0, "valid": 0.0, "test": 0.0}))
    assert ints.hash == floats.hash


@pytest.mark.parametrize(
    "changes",
    [
        {"preprocess__max_length": 17},
        {"preprocess__tokenizer__lowercase": False},
        {"preprocess__splits__salt": "other"},
        {"data__path": "data/other.csv"},
        {"task__classes": ["a", "b", "d"]},
        {"output_dir": "runs/other"},
    ],
)
def test_hash_changes_with_any_value(changes):
    assert config_from_dict(emoji(**changes)).hash != config_from_dict(EMOJI).hash


def test_hash_with_an_override_matches_the_edited_file(tmp_path):
    overridden = load_config(write_yaml(tmp_path, EMOJI, "a.yaml"), ["preprocess.max_length=24"])
    edited = load_config(write_yaml(tmp_path, emoji(preprocess__max_length=24), "b.yaml"))
    assert overridden.hash == edited.hash


TRAIN = {"model": {"family": "emojifier_v1"}, "epochs": 2}


@pytest.mark.parametrize("changes, first_changed", [
    ({"preprocess__max_length": 17}, "preprocess"),
    ({"data__path": "data/other.csv"}, "preprocess"),
    ({"train__epochs": 3}, "train"),
    ({"infer__emoji_threshold": 0.7}, "infer"),
    ({"evaluate__attention_examples": 2}, "evaluate"),
    ({"output_dir": "runs/elsewhere"}, None),
])
def test_stage_hashes_change_from_the_first_stage_that_reads_the_key(changes, first_changed):
    base = config_from_dict(emoji(train=TRAIN))
    changed = config_from_dict(emoji(train=TRAIN, **changes))
    stages = ("preprocess", "train", "infer", "evaluate")
    differs = [base.stage_hash(stage) != changed.stage_hash(stage) for stage in stages]
    first = stages.index(first_changed) if first_changed else len(stages)
    assert differs == [i >= first for i in range(len(stages))]


def test_stage_hash_names_an_unknown_stage():
    with pytest.raises(ValueError, match="unknown stage 'report'"):
        config_from_dict(EMOJI).stage_hash("report")


def test_evaluate_section_is_checked(tmp_path):
    config = config_from_dict(emoji(evaluate={"reference": {"format": "csv", "path": "ref.csv", "label_column": 1}}))
    assert config.evaluate.reference.path == "ref.csv" and config.evaluate.attention_examples == 4
    with pytest.raises(ConfigError, match="evaluate.reference.path"):
        config_from_dict(emoji(evaluate={"reference": {"format": "csv"}}))
    with pytest.raises(ConfigError, match="evaluate.attention_examples"):
        config_from_dict(emoji(evaluate={"attention_examples": -1}))
    with pytest.raises(ConfigError, match="evaluate.refrence"):
        load_config(write_yaml(tmp_path, emoji(evaluate={"refrence": None}), "typo.yaml"))


def test_configs_are_frozen():
    config = config_from_dict(EMOJI)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.output_dir = "elsewhere"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.data.path = "other.csv"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.preprocess.tokenizer.lowercase = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.preprocess.splits.train = 0.5  # type: ignore[misc]
    assert isinstance(config.task.classes, tuple)
    assert isinstance(DataConfig(format="text", path="x"), DataConfig)


def test_yaml_utf16_escapes_become_whole_characters(tmp_path):
    # json.dumps writes "😄" as "\ud83d\ude04", which YAML reads as two lone surrogates.
    config = load_config(write_yaml(tmp_path, emoji(task__classes=["😄", "❤️", "b"]), "a.yaml"))
    assert config.task.classes == ("😄", "❤️", "b")
    escaped = tmp_path / "escaped.yaml"
    escaped.write_text(json.dumps(emoji(task__classes=["😄", "❤️", "b"])), encoding="utf-8")
    assert "\\ud83d" in escaped.read_text(encoding="utf-8")
    assert load_config(str(escaped)).task.classes == ("😄", "❤️", "b")
    with pytest.raises(ConfigError, match=r"task.classes\[0\].*lone UTF-16 surrogate"):
        config_from_dict(emoji(task__classes=["\ud83d", "b", "c"]))
    with pytest.raises(ConfigError, match="--set output_dir: the value is not valid YAML"):
        load_config(str(escaped), ["output_dir=!!python/object/apply:os.system ['true']"])


def test_vocabulary_mode_keys_default_to_exact_and_are_checked(tmp_path):
    config = config_from_dict(EMOJI)
    for vocab in (config.preprocess.source_vocab, config.preprocess.target_vocab):
        assert vocab.approximate is False and vocab.capacity_factor == 4
    config = load_config(write_yaml(tmp_path, emoji(
        preprocess__target_vocab={"approximate": True, "capacity_factor": 2}), "approx.yaml"))
    assert config.preprocess.target_vocab.approximate is True
    assert config.preprocess.target_vocab.capacity_factor == 2
    assert config.preprocess.source_vocab.approximate is False
    assert load_config(write_yaml(tmp_path, EMOJI), ["preprocess.source_vocab.approximate=true"]
                       ).preprocess.source_vocab.approximate is True
    for changes, key in [
        ({"preprocess__source_vocab": {"capacity_factor": 0}}, "preprocess.source_vocab.capacity_factor"),
        ({"preprocess__target_vocab": {"capacity_factor": -3}}, "preprocess.target_vocab.capacity_factor"),
        ({"preprocess__source_vocab": {"capacity_factor": 2.5}}, "preprocess.source_vocab.capacity_factor"),
        ({"preprocess__source_vocab": {"approximate": "sometimes"}}, "preprocess.source_vocab.approximate"),
        ({"preprocess__source_vocab": {"aproximate": True}}, "preprocess.source_vocab.aproximate"),
    ]:
        assert f"'{key}'" in config_error(tmp_path, emoji(**changes))


def test_failure_rate_keys_default_to_one_percent_and_are_checked(tmp_path):
    config = config_from_dict(EMOJI)
    assert config.preprocess.max_failure_rate == config.infer.max_failure_rate == 0.01
    config = load_config(write_yaml(tmp_path, emoji(preprocess__max_failure_rate=0, infer__max_failure_rate=1)),
                         ["infer.max_failure_rate=0.25"])
    assert (config.preprocess.max_failure_rate, config.infer.max_failure_rate) == (0.0, 0.25)
    for changes, key in [
        ({"preprocess__max_failure_rate": 1.5}, "preprocess.max_failure_rate"),
        ({"preprocess__max_failure_rate": -0.1}, "preprocess.max_failure_rate"),
        ({"infer__max_failure_rate": 2}, "infer.max_failure_rate"),
        ({"infer__max_failure_rate": "1%"}, "infer.max_failure_rate"),
    ]:
        assert f"'{key}'" in config_error(tmp_path, emoji(**changes))


# --- pretrained vectors: the vocabulary's and the embedding's -----------------------


def test_the_embedding_takes_the_vocabulary_vectors_frozen_by_default():
    config = config_from_dict(emoji(preprocess__source_vocab__vectors="glove-6b-50d", train=TRAIN))
    assert config.train.model.pretrained_vectors == "glove-6b-50d"
    assert config.train.model.trainable_embeddings is False
    assert config.preprocess.source_vocab.vectors_rows == 0
    # The resolved config round-trips to the same config.
    assert config_from_dict(yaml.safe_load(config.to_yaml())) == config
    # Vectors for the embedding only: the corpus vocabulary, each word with its vector.
    only_model = config_from_dict(emoji(train={**TRAIN, "model": {"family": "emojifier_v1",
                                                                  "pretrained_vectors": "glove-6b-50d"}}))
    assert only_model.preprocess.source_vocab.vectors == ""
    assert only_model.train.model.pretrained_vectors == "glove-6b-50d"


def test_changing_the_vocabulary_vectors_redoes_preprocessing():
    base = config_from_dict(emoji(preprocess__source_vocab__vectors="glove-6b-50d", train=TRAIN))
    fewer = config_from_dict(emoji(preprocess__source_vocab__vectors="glove-6b-50d",
                                   preprocess__source_vocab__vectors_rows=1000, train=TRAIN))
    assert base.stage_hash("preprocess") != fewer.stage_hash("preprocess")


@pytest.mark.parametrize("changes, key, words", [
    ({"preprocess__source_vocab__vectors": "glove-6b-300d"}, "preprocess.source_vocab.vectors", "registered"),
    ({"preprocess__source_vocab__vectors_rows": -1}, "preprocess.source_vocab.vectors_rows", "0 (all rows)"),
    ({"preprocess__target_vocab__vectors": "glove-6b-50d"}, "preprocess.target_vocab.vectors", "source"),
    ({"preprocess__source_vocab__vectors": "glove-6b-50d", "preprocess__tokenizer__level": "char"},
     "preprocess.source_vocab.vectors", "word-level"),
    ({"preprocess__source_vocab__vectors": "glove-6b-50d",
      "train": {"model": {"family": "emojifier_v1", "pretrained_vectors": "other/vectors.txt"}}},
     "train.model.pretrained_vectors", "differs"),
    ({"train": {"model": {"family": "emojifier_v2", "pretrained_vectors": "glove6b"}}},
     "train.model.pretrained_vectors", "registered"),
    ({"task__classes": ["a", "b"], "preprocess__source_vocab__vectors": "glove-6b-50d",
      "train": {"model": {"family": "grammar"}}}, "preprocess.source_vocab.vectors", "only the emojifiers"),
])
def test_bad_vectors_settings_name_the_key(tmp_path, changes, key, words):
    message = config_error(tmp_path, emoji(**changes))
    assert f"'{key}'" in message and words in message


def test_vectors_names_agree_with_the_registry():
    from seqbeam.configs.schema import VECTOR_NAMES
    from seqbeam.text.vectors import REGISTERED

    assert set(VECTOR_NAMES) == set(REGISTERED)
