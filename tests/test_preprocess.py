"""The preprocessing job end to end: golden TFRecords per task, accounting, splits, runners."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from seqbeam.pipelines import layout, preprocess
from seqbeam.text.day_order import day_order_prefix
from seqbeam.transforms.date_generator import generate_dates
from seqbeam.text.encoding import TokenIds, pad
from seqbeam.transforms.reber_generator import is_embedded_reber
from seqbeam.transforms.synthetic import shard_seed
from seqbeam.text.tokenizer import TextTokenizer
from seqbeam.transforms.validate import assign_split
from seqbeam.text.vocabulary import Vocabulary

from conftest import line_id, read_examples, read_rejected

ALL_TRAIN = {"train": 1.0, "valid": 0.0, "test": 0.0}


def run(config, *beam_args):
    metadata = preprocess.run_config(config, list(beam_args), save_main_session=False)
    return metadata, layout.data_dir(config)


def write(path, text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def rejected_records(data_dir: str) -> list[dict]:
    return read_rejected(os.path.join(data_dir, "rejected"))


def decode(ids, vocab: Vocabulary, sep: str = "") -> str:
    return sep.join(vocab.tokens[i] for i in ids if i > 3)


def test_classifier_golden_records(tmp_path, make_config):
    corpus = write(tmp_path / "emoji.csv", "sentence,label\nI love you,0\nyou love FOOD,4\n")
    config = make_config(
        {"name": "emoji", "kind": "classifier", "classes": ["a", "b", "c", "d", "e"]},
        {"format": "csv", "path": corpus, "text_column": "sentence", "label_column": "label"},
        {"max_length": 4, "splits": ALL_TRAIN},
    )
    metadata, data_dir = run(config)
    # Counts: love 2, you 2, food 1, i 1; ties broken by the token.
    assert open(os.path.join(data_dir, "vocab", "tokens.txt"), encoding="utf-8").read().split() == [
        "<pad>", "<unk>", "<start>", "<end>", "love", "you", "food", "i"]
    assert read_examples(data_dir, "train") == [
        {"id": line_id(corpus, 2), "tokens": [7, 4, 5, 0], "length": [3], "label": [0]},
        {"id": line_id(corpus, 3), "tokens": [5, 4, 6, 0], "length": [3], "label": [4]},
    ]
    assert metadata["rows"] == {"in": 2, "train": 2, "valid": 0, "test": 0, "rejected": 0}
    assert metadata["vocab_sizes"] == {"tokens": 8}
    assert metadata["max_lengths"] == {"tokens": 4}
    assert metadata["config_hash"] == config.stage_hash("preprocess")
    assert json.load(open(os.path.join(data_dir, "metadata.json")))["config_hash"] == config.stage_hash("preprocess")
    assert os.path.exists(os.path.join(data_dir, "config.yaml"))


def test_seq2seq_golden_records_with_teacher_forcing(tmp_path, make_config):
    corpus = write(tmp_path / "pairs.tsv", "Go.\tVe.\tCC-BY\nI go.\tYo voy.\tCC-BY\n")
    config = make_config(
        {"name": "translate", "kind": "seq2seq"},
        {"format": "anki", "path": corpus},
        {"max_length": 4, "max_target_length": 5, "splits": ALL_TRAIN},
    )
    _, data_dir = run(config)
    # Source: '.' 2, go 2, i 1. Target: '.' 2, ve 1, voy 1, yo 1.
    assert read_examples(data_dir, "train") == [
        {"id": line_id(corpus, 1), "source": [5, 4, 0, 0], "source_length": [2],
         "target_in": [2, 5, 4, 0, 0], "target_out": [5, 4, 3, 0, 0], "target_length": [3]},
        {"id": line_id(corpus, 2), "source": [6, 5, 4, 0], "source_length": [3],
         "target_in": [2, 7, 6, 4, 0], "target_out": [7, 6, 4, 3, 0], "target_length": [4]},
    ]


def test_truncation_keeps_start_and_end_markers(tmp_path, make_config):
    corpus = write(tmp_path / "pairs.tsv", "a b c d e f\tu v w x y z\tx\n")
    config = make_config(
        {"name": "translate", "kind": "seq2seq"},
        {"format": "anki", "path": corpus},
        {"max_length": 3, "max_target_length": 4, "splits": ALL_TRAIN},
    )
    metadata, data_dir = run(config)
    (row,) = read_examples(data_dir, "train")
    assert row["source_length"] == [3] and 0 not in row["source"]
    assert row["target_in"][0] == 2 and row["target_out"][-1] == 3 and row["target_length"] == [4]
    assert metadata["truncated"] == 1


def test_language_model_golden_records(tmp_path, make_config):
    corpus = write(tmp_path / "names.txt", "ab\nBa\n")
    config = make_config(
        {"name": "names", "kind": "lm"},
        {"format": "text", "path": corpus},
        {"tokenizer": {"level": "char"}, "max_length": 4, "splits": ALL_TRAIN},
    )
    _, data_dir = run(config)
    assert read_examples(data_dir, "train") == [
        {"id": line_id(corpus, 1), "tokens": [2, 4, 5, 0], "targets": [4, 5, 3, 0], "length": [3]},
        {"id": line_id(corpus, 2), "tokens": [2, 5, 4, 0], "targets": [5, 4, 3, 0], "length": [3]},
    ]


def test_generated_dates_decode_back_to_their_iso_targets(tmp_path, make_config):
    config = make_config(
        {"name": "dates", "kind": "seq2seq"},
        {"format": "generated", "generator": {"name": "dates", "num_rows": 300, "seed": 5, "rows_per_shard": 100}},
        {"tokenizer": {"level": "char"}, "max_length": 48, "max_target_length": 12},
    )
    metadata, data_dir = run(config)
    source_vocab = Vocabulary.load(os.path.join(data_dir, "vocab", "source.txt"))
    target_vocab = Vocabulary.load(os.path.join(data_dir, "vocab", "target.txt"))
    expected = {}
    for shard in range(3):
        for i, example in enumerate(generate_dates(100, shard_seed(5, shard), noise_rate=0.1), start=shard * 100):
            expected[f"dates-5:{i}"] = example
    rows = [r for split in ("train", "valid", "test") for r in read_examples(data_dir, split)]
    assert len(rows) == 300 == metadata["rows"]["in"]
    tokenizer = TextTokenizer(level="char")
    for row in rows:
        example = expected[row["id"]]
        assert decode(row["target_out"], target_vocab) == example.iso
        if 1 not in row["source"]:  # a char unseen in train would decode as <unk>
            # A generated date row starts with the day-order token of its order (text/day_order.py).
            text = day_order_prefix(example.day_first) + example.raw
            assert decode(row["source"], source_vocab) == "".join(tokenizer.tokenize_to_lists([text])[0])


def test_generated_reber_labels_match_the_grammar(tmp_path, make_config):
    config = make_config(
        {"name": "reber", "kind": "classifier", "classes": ["no", "yes"]},
        {"format": "generated", "generator": {"name": "reber", "num_rows": 200, "seed": 1}},
        {"tokenizer": {"level": "char", "lowercase": False}, "max_length": 64},
    )
    _, data_dir = run(config)
    vocab = Vocabulary.load(os.path.join(data_dir, "vocab", "tokens.txt"))
    rows = [r for split in ("train", "valid", "test") for r in read_examples(data_dir, split)]
    assert len(rows) == 200
    assert sum(r["label"][0] for r in rows) == 100
    for row in rows:
        text = decode(row["tokens"], vocab)
        if 1 not in row["tokens"]:  # a char unseen in train would decode as <unk>
            assert row["label"] == [int(is_embedded_reber(text))]


BAD_EMOJI_CORPUS = (
    b"sentence,label\n"
    b"I love you,0\n"              # ok
    b"lets play ball,1\n"          # ok
    b"\xff\xfe broken bytes,2\n"   # undecodable
    b"\n"                          # empty line
    b"no label column\n"           # missing column
    b"what a day,7\n"              # label out of range
    b"what a day,x\n"              # label not an integer
    b",3\n"                        # empty text
    b"\"unbalanced quote,2\n"      # malformed csv
    b"\x01\x02,2\n"                # no token after normalization
    b"one two three four five six seven eight nine ten,3\n"  # too many tokens (reject mode)
    + b"z" * 300 + b",4\n"         # longer than max_chars
)


def test_every_bad_input_is_rejected_with_its_reason_and_counts_add_up(tmp_path, make_config):
    corpus = write(tmp_path / "bad.csv", BAD_EMOJI_CORPUS)
    config = make_config(
        {"name": "emoji", "kind": "classifier", "classes": ["a", "b", "c", "d", "e"]},
        {"format": "csv", "path": corpus, "text_column": "sentence", "label_column": "label"},
        {"max_length": 6, "overflow": "reject", "max_chars": 200, "splits": ALL_TRAIN},
    )
    metadata, data_dir = run(config)
    rejected = rejected_records(data_dir)
    assert {(r["id"], r["stage"], r["code"]) for r in rejected} == {
        (line_id(corpus, 4), "read", "undecodable"),
        (line_id(corpus, 5), "read", "empty_line"),
        (line_id(corpus, 6), "read", "missing_column"),
        (line_id(corpus, 7), "validate", "bad_label"),
        (line_id(corpus, 8), "validate", "bad_label"),
        (line_id(corpus, 9), "validate", "empty_text"),
        (line_id(corpus, 10), "read", "malformed_csv"),
        (line_id(corpus, 11), "encode", "no_tokens"),
        (line_id(corpus, 12), "encode", "too_many_tokens"),
        (line_id(corpus, 13), "validate", "too_many_chars"),
    }
    undecodable = next(r for r in rejected if r["code"] == "undecodable")
    assert undecodable["raw"].startswith("\\xff\\xfe broken")
    assert "outside 0..4" in next(r["reason"] for r in rejected if r["id"] == line_id(corpus, 7))
    written = read_examples(data_dir, "train")
    assert [r["id"] for r in written] == sorted([line_id(corpus, 2), line_id(corpus, 3)])
    rows = metadata["rows"]
    assert rows["in"] == 12 == rows["train"] + rows["valid"] + rows["test"] + rows["rejected"]
    assert rows["rejected"] == len(rejected) == 10
    assert metadata["rejected"]["by_stage"] == {"read": 4, "validate": 4, "encode": 2}
    assert metadata["rejected"]["by_reason"]["validate/bad_label"] == 2


def test_seq2seq_rejects_empty_targets(tmp_path, make_config):
    corpus = write(tmp_path / "pairs.tsv", "Hello.\tHola.\tx\nBye.\t\tx\nOk.\t  \tx\n")
    config = make_config({"name": "translate", "kind": "seq2seq"}, {"format": "anki", "path": corpus},
                         {"splits": ALL_TRAIN})
    metadata, data_dir = run(config)
    assert [(r["id"], r["code"]) for r in rejected_records(data_dir)] == [
        (line_id(corpus, 2), "empty_target"), (line_id(corpus, 3), "empty_target")]
    assert metadata["rows"]["train"] == 1


def test_served_graph_tokenizes_to_the_same_ids_as_the_pipeline(tmp_path, make_config):
    sentences = ["Hello, World!", "¿Dónde está la estación?", "I ❤️ pizza...", "don't STOP", "ＦＵＬＬ width"]
    corpus = write(tmp_path / "s.csv", "".join(f'"{s}",{i % 2}\n' for i, s in enumerate(sentences)))
    config = make_config(
        {"name": "emoji", "kind": "classifier", "classes": ["a", "b"]},
        {"format": "csv", "path": corpus, "header": False, "text_column": 0, "label_column": 1},
        {"max_length": 8, "splits": ALL_TRAIN},
    )
    _, data_dir = run(config)
    vocab = Vocabulary.load(os.path.join(data_dir, "vocab", "tokens.txt"))
    graph = TokenIds(TextTokenizer.from_config(config.preprocess.tokenizer), vocab)
    served = pad(graph(tf.constant(sentences)), 8).numpy()
    by_id = {r["id"]: r["tokens"] for r in read_examples(data_dir, "train")}
    np.testing.assert_array_equal(served, np.array([by_id[line_id(corpus, i + 1)] for i in range(len(sentences))]))


@pytest.mark.slow
def test_split_is_a_function_of_the_id_on_both_runner_modes(tmp_path, make_config):
    lines = "".join(f"sentence number {i} here,{i % 3}\n" for i in range(400))
    corpus = write(tmp_path / "many.csv", lines)
    config = make_config(
        {"name": "emoji", "kind": "classifier", "classes": ["a", "b", "c"]},
        {"format": "csv", "path": corpus, "header": False, "text_column": 0, "label_column": 1},
        {"num_shards": 2},
    )
    splits = {}
    for mode in ("in_memory", "multi_processing"):
        metadata, data_dir = run(config, f"--direct_running_mode={mode}", "--direct_num_workers=2")
        splits[mode] = {split: [r["id"] for r in read_examples(data_dir, split)] for split in ("train", "valid", "test")}
        assert metadata["rows"]["in"] == 400
    assert splits["in_memory"] == splits["multi_processing"]
    for split, ids in splits["in_memory"].items():
        assert all(assign_split(i, config.preprocess.splits) == split for i in ids)
    assert 280 <= len(splits["in_memory"]["train"]) <= 360  # 80 % of 400, give or take
    assert len(set(sum(splits["in_memory"].values(), []))) == 400


def test_rerun_replaces_outputs(tmp_path, make_config):
    corpus = write(tmp_path / "names.txt", "ab\nba\nabba\n")
    data = {"format": "text", "path": corpus}
    pre = {"tokenizer": {"level": "char"}, "max_length": 8}
    run(make_config({"name": "names", "kind": "lm"}, data, {**pre, "num_shards": 3}))
    _, data_dir = run(make_config({"name": "names", "kind": "lm"}, data, {**pre, "num_shards": 1}))
    shards = sorted(f for f in os.listdir(data_dir) if f.endswith(".tfrecord.gz"))
    assert shards == ["test-00000-of-00001.tfrecord.gz", "train-00000-of-00001.tfrecord.gz",
                      "valid-00000-of-00001.tfrecord.gz"]


def test_fails_fast_on_missing_or_empty_input(tmp_path, make_config):
    task = {"name": "names", "kind": "lm"}
    with pytest.raises(FileNotFoundError, match="data.path"):
        run(make_config(task, {"format": "text", "path": str(tmp_path / "nope*.txt")}))
    empty = write(tmp_path / "empty.txt", "")
    with pytest.raises(ValueError, match="empty"):
        run(make_config(task, {"format": "text", "path": empty}))


def test_a_corpus_with_no_valid_row_fails_after_writing_the_rejections(tmp_path, make_config):
    corpus = write(tmp_path / "names.txt", "\n \n\x01\n")
    config = make_config({"name": "names", "kind": "lm"}, {"format": "text", "path": corpus})
    with pytest.raises(RuntimeError, match="no row reached the train split"):
        run(config)
    assert len(rejected_records(layout.data_dir(config))) == 3


def files_and_bytes(folder) -> dict[str, bytes]:
    """Every file under ``folder`` with its contents."""
    return {os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


def test_a_typo_in_the_data_path_fails_naming_it_and_keeps_the_last_run(tmp_path, make_config):
    corpus = write(tmp_path / "names.txt", "ab\nba\nabba\n")
    config = make_config({"name": "names", "kind": "lm"}, {"format": "text", "path": corpus},
                         {"tokenizer": {"level": "char"}, "max_length": 8})
    config_path = write(tmp_path / "names.yaml", config.to_yaml())
    preprocess.run(["--config", config_path], save_main_session=False)
    before = files_and_bytes(layout.data_dir(config))
    assert "metadata.json" in before and "config.yaml" in before
    with pytest.raises(FileNotFoundError, match=r"^data\.path: .*nmaes\.txt"):
        preprocess.run(["--config", config_path, "--set", f"data.path={tmp_path / 'nmaes.txt'}"],
                       save_main_session=False)
    assert files_and_bytes(layout.data_dir(config)) == before


@pytest.mark.slow
def test_rejected_rows_are_sharded_like_the_tfrecords_on_a_multi_worker_run(tmp_path, make_config):
    lines = "".join(f"sentence number {i} here,{i % 3 if i % 2 else 9}\n" for i in range(1200))  # odd: label 9
    corpus = write(tmp_path / "many.csv", lines)
    config = make_config(
        {"name": "emoji", "kind": "classifier", "classes": ["a", "b", "c"]},
        {"format": "csv", "path": corpus, "header": False, "text_column": 0, "label_column": 1},
        {"num_shards": 4},
    )
    metadata, data_dir = run(config, "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert metadata["rows"]["rejected"] == 600 and metadata["rejected"]["by_reason"] == {"validate/bad_label": 600}
    folder = os.path.join(data_dir, "rejected")
    assert sorted(os.listdir(folder)) == [f"rejected-0000{i}-of-00004.parquet" for i in range(4)]
    per_file = [pq.read_metadata(os.path.join(folder, name)).num_rows for name in sorted(os.listdir(folder))]
    assert sum(per_file) == 600 and sum(count > 0 for count in per_file) >= 2, per_file
    assert len({r["id"] for r in rejected_records(data_dir)}) == 600
    assert metadata["failures"] == {"rows": 0, "rate": 0.0, "max_rate": 0.01, "first": []}
