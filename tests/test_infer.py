"""The batch-inference job end to end: small models trained here, real Parquet read back."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import random

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from seqbeam.pipelines import infer, layout, preprocess, serving, train
from seqbeam.configs.schema import config_from_dict
from seqbeam.pipelines.options import pipeline_options
from seqbeam.transforms.postprocess import EmojiOutputs, NameOutputs, TranslationOutputs
from seqbeam.transforms.sinks import REJECTED_SCHEMA
from seqbeam.transforms.validate import assign_split

from conftest import EMOJI_CLASSES, copy_task, line_id

CLASSES = EMOJI_CLASSES
MULTI_PROCESSING = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def read_table(folder: str):
    return pq.read_table(folder).sort_by("id")


def parquet_files(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "*.parquet")))


def with_infer(config, **infer_overrides):
    return dataclasses.replace(config, infer=dataclasses.replace(config.infer, **infer_overrides))


def elsewhere(config, folder):
    """The config writing under ``folder`` but still serving the model it trained."""
    moved = with_infer(config, model_path=serving.plan_serving(config).model_path)
    return dataclasses.replace(moved, output_dir=str(folder))


# ------------------------------------------------------------------------------ emoji


@pytest.fixture(scope="module")
def emoji_model(shared_emoji, tmp_path_factory):
    """The session's emoji classifier (conftest.SHARED_EMOJI_TRAIN), its task folder copied here:
    the jobs below write their outputs beside its model, and input files into ``folder``."""
    folder = tmp_path_factory.mktemp("emoji")
    return copy_task(shared_emoji.config, folder / "out"), folder


# An annotation corpus with every kind of bad row beside good ones.
EMOJI_INPUT = [
    ("1", "I love you so much. We play ball today! so sad now"),
    ("2", "dinner now"),
    ("3", "   "),                                # empty text
    ("4", "food " * 200),                        # over infer.max_chars
    ("5", "so " * 12 + "fun"),                   # more tokens than the model reads (8)
    ("6", "really great fun"),
]


def write_emoji_input(folder) -> str:
    path = folder / "annotate.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for row_id, text in EMOJI_INPUT:
            f.write(json.dumps({"id": row_id, "sentence": text}) + "\n")
        f.write(json.dumps({"id": "7", "other": "no sentence column"}) + "\n")   # missing column
        f.write(json.dumps({"id": "8", "sentence": 42}) + "\n")                  # not text
        f.write("{not json\n")                                                   # malformed line
    return str(path)


def emoji_infer_config(emoji_model, **overrides):
    config, folder = emoji_model
    data = config_from_dict({**config.to_dict(), "data": {
        "format": "jsonl", "path": write_emoji_input(folder), "text_column": "sentence", "id_column": "id",
        "label_column": "label"}}).data
    return with_infer(config, input=data, max_chars=500, emoji_threshold=0.4, max_batch_size=4, **overrides)


def test_emoji_job_writes_tagged_sentences_and_accounts_for_every_row(emoji_model):
    config = emoji_infer_config(emoji_model)
    summary = infer.run_config(config, save_main_session=False)

    rows = summary["rows"]
    assert rows == {**rows, "in": 9, "out": 4, "rejected": 5, "truncated": 1}
    table = read_table(summary["predictions"])
    assert table.schema == EmojiOutputs.schema
    assert pq.read_schema(parquet_files(summary["predictions"])[0]).field("sentences").type == (
        EmojiOutputs.schema.field("sentences").type)
    assert pq.ParquetFile(parquet_files(summary["predictions"])[0]).metadata.row_group(0).column(0).compression == (
        "SNAPPY")
    by_id = {row["id"]: row for row in table.to_pylist()}
    assert sorted(by_id) == ["1", "2", "5", "6"]
    first = by_id["1"]
    assert [s["text"] for s in first["sentences"]] == ["I love you so much.", "We play ball today!", "so sad now"]
    # Each sentence is followed by its emoji exactly when it is probable enough.
    expected = ""
    for piece, sentence in zip(["I love you so much. ", "We play ball today! ", "so sad now"], first["sentences"]):
        emoji = f" {sentence['emoji']}" if sentence["probability"] >= 0.4 else ""
        expected += piece.rstrip() + emoji + piece[len(piece.rstrip()):]
    assert first["emojified_text"] == expected
    assert [s["emoji"] for s in first["sentences"]] == [CLASSES[s["label"]] for s in first["sentences"]]
    assert by_id["5"]["truncated"] and not by_id["6"]["truncated"]
    assert {row["model_version"] for row in by_id.values()} == {os.path.basename(summary["model_path"])}

    rejected = read_table(summary["rejected"])
    assert rejected.schema == REJECTED_SCHEMA
    by_id = {row["id"]: row for row in rejected.to_pylist()}
    reasons = {row_id: (row["stage"], row["code"]) for row_id, row in by_id.items()}
    assert reasons == {
        "3": ("validate", "empty_text"),
        "4": ("validate", "too_many_chars"),
        line_id(config.infer.input.path, 7): ("read", "missing_column"),
        line_id(config.infer.input.path, 8): ("read", "not_text"),
        line_id(config.infer.input.path, 9): ("read", "malformed_json"),
    }
    assert by_id[line_id(config.infer.input.path, 9)]["raw"] == "{not json"
    assert by_id["4"]["reason"] == "too_many_chars: 1000 characters > infer.max_chars 500"


def test_emoji_job_rejects_over_long_inputs_when_told_and_reruns_replace_outputs(emoji_model):
    config = emoji_infer_config(emoji_model, overflow="reject")
    first = infer.run_config(config, save_main_session=False)
    second = infer.run_config(config, save_main_session=False)
    assert first["rows"] == second["rows"] == {**first["rows"], "in": 9, "out": 3, "rejected": 6}
    assert read_table(first["predictions"]).equals(read_table(second["predictions"]))
    # One set of outputs: the rerun replaced the files, it did not add to them.
    assert pq.read_table(second["predictions"]).num_rows == 3
    assert len(parquet_files(second["rejected"])) == 1
    rejected = {r["id"]: r for r in read_table(second["rejected"]).to_pylist()}
    assert (rejected["5"]["stage"], rejected["5"]["code"]) == ("infer", "too_many_tokens")


def test_length_aware_and_arrival_order_batching_give_the_same_predictions(emoji_model, tmp_path):
    config, folder = emoji_model
    texts = ["love " * n + "you" for n in range(1, 7)] * 20 + ["we eat", "so sad", "great fun game"] * 20
    (folder / "many.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    data = dataclasses.replace(config.data, format="text", path=str(folder / "many.txt"), label_column=None,
                               header=False)
    results = []
    for buckets in ((4, 8, 16, 32), ()):
        run = elsewhere(with_infer(config, input=data, length_buckets=buckets, max_batch_size=16, min_batch_size=16),
                        tmp_path / f"buckets{len(buckets)}")
        summary = infer.run_config(run, save_main_session=False)
        assert summary["rows"]["in"] == summary["rows"]["out"] == len(texts)
        results.append(read_table(summary["predictions"]).to_pylist())
    bucketed, plain = results
    assert [a["id"] for a in bucketed] == [b["id"] for b in plain]
    for a, b in zip(bucketed, plain):
        (sentence_a,), (sentence_b,) = a["sentences"], b["sentences"]
        assert sentence_a["label"] == sentence_b["label"]
        assert sentence_a["probability"] == pytest.approx(sentence_b["probability"], abs=1e-5)


@pytest.mark.slow
def test_multi_processing_runner_gives_the_in_process_outputs(emoji_model, tmp_path):
    config = emoji_infer_config(emoji_model)
    in_process = infer.run_config(config, save_main_session=False)
    expected = read_table(in_process["predictions"])
    expected_rejected = read_table(in_process["rejected"])
    multi = infer.run_config(elsewhere(config, tmp_path), MULTI_PROCESSING, save_main_session=False)
    assert multi["rows"] == in_process["rows"]
    got = read_table(multi["predictions"])
    assert got.column("emojified_text").equals(expected.column("emojified_text"))
    assert read_table(multi["rejected"]).equals(expected_rejected)


def test_a_missing_or_foreign_model_fails_before_any_work(emoji_model, tmp_path):
    config, _ = emoji_model
    missing = dataclasses.replace(config, output_dir=str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match=r"no exported model under .*nothing/emoji/model"):
        infer.run_config(missing, save_main_session=False)
    not_a_model = with_infer(config, model_path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} is not a SavedModel folder"):
        infer.run_config(not_a_model, save_main_session=False)
    model_path = serving.plan_serving(config).model_path
    foreign = dataclasses.replace(config, task=dataclasses.replace(config.task, name="other"))
    with pytest.raises(ValueError, match="exported for task 'emoji', not 'other'"):
        infer.run_config(with_infer(foreign, model_path=model_path), save_main_session=False)
    assert not os.path.exists(tmp_path / "nothing")


# ------------------------------------------------------------------------------ the row checks (KeyExamples)


def test_key_examples_keys_what_the_model_can_take_and_rejects_the_rest():
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from seqbeam.transforms.records import REJECTED, STATS, Row
    from seqbeam.transforms.sinks import SumCounts
    from seqbeam.transforms.validate import KeyExamples

    lists = [[Row("a", "Hi there. Bye!"), Row("b", "   "), Row("c", "x" * 30), Row("d", "one", label="3")],
             [Row("e", "")]]  # a list with no valid row gives no keyed list
    with TestPipeline(options=pipeline_options([])) as p:
        rows = p | beam.Create(lists)
        for name, sentences, examples in [
            ("Sentences", True, [("a", ("Hi there. ", "Bye!")), ("d", ("one",))]),
            ("Texts", False, [("a", "Hi there. Bye!"), ("d", "one")]),
        ]:
            out = rows | f"Key{name}" >> beam.ParDo(KeyExamples(20, sentences=sentences)).with_outputs(
                REJECTED, STATS, main="keyed")
            # Rows cut into sentences come as one SentenceBatch, whose rows are these pairs.
            assert_that(out.keyed | f"Pairs{name}" >> beam.Map(list), equal_to([examples]), label=f"keyed{name}")
            assert_that(out[REJECTED], equal_to([
                {"id": "b", "raw": "   ", "stage": "validate", "code": "empty_text", "reason": "empty_text"},
                {"id": "c", "raw": "x" * 30, "stage": "validate", "code": "too_many_chars",
                 "reason": "too_many_chars: 30 characters > infer.max_chars 20"},
                {"id": "e", "raw": "", "stage": "validate", "code": "empty_text", "reason": "empty_text"},
            ]), label=f"rejected{name}")
            # Every row that came through reading, kept or not.
            assert_that(out[STATS] | f"Sum{name}" >> beam.CombineGlobally(SumCounts()), equal_to([{"read": 5}]),
                        label=f"stats{name}")


# ------------------------------------------------------------------------------ translation


def write_pairs(path, rows: int, seed: int) -> str:
    rng = random.Random(seed)
    lexicon = {"i": "yo", "see": "veo", "the": "el", "red": "rojo", "cat": "gato", "dog": "perro", "big": "grande",
               "house": "casa", "eat": "como", "bread": "pan", "drink": "bebo", "water": "agua"}
    words = sorted(lexicon)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(rows):
            source = [rng.choice(words) for _ in range(rng.randint(2, 5))]
            mark = rng.choice([".", "?"])
            target = ("¿" if mark == "?" else "") + " ".join(lexicon[w] for w in source) + mark
            f.write(f"{' '.join(source)}{mark}\t{target}\tCC-BY\n")
    return str(path)


@pytest.fixture(scope="module")
def translate_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("translate")
    config = config_from_dict({
        "task": {"name": "translate", "kind": "seq2seq"},
        "data": {"format": "anki", "path": write_pairs(folder / "pairs.tsv", 600, 1)},
        "preprocess": {"max_length": 8, "max_target_length": 10, "num_shards": 1},
        "train": {"model": {"family": "seq2seq", "embedding_dim": 16, "units": 32, "dropout": 0.0}, "epochs": 3,
                  "batch_size": 32, "learning_rate": 0.01, "early_stopping_patience": 0,
                  "export": {"decode": "greedy"}},
        "output_dir": str(folder / "out"),
    })
    preprocess.run_config(config, save_main_session=False)
    train.run_config(config)
    return config


@pytest.mark.parametrize("decode, signature", [("model", "serving_default"), ("greedy", "greedy"),
                                               ("beam", "beam_search")])
def test_translation_job_decodes_as_configured(translate_model, decode, signature):
    config = with_infer(translate_model, decode=decode, beam_width=3)
    summary = infer.run_config(config, save_main_session=False)
    assert summary["signature"] == signature
    assert summary["rows"]["in"] == summary["rows"]["out"] == 600
    table = read_table(summary["predictions"])
    assert table.schema == TranslationOutputs.schema
    assert all(score <= 0 for score in table.column("score").to_pylist())
    # Anki rows keep only the source: the target column is not read at inference.
    assert all(source.endswith((".", "?")) and "\t" not in source for source in table.column("source").to_pylist())
    # Word-level output is detokenized: no space before closing punctuation.
    assert not any(t.endswith((" .", " ?")) for t in table.column("translation").to_pylist())


# ------------------------------------------------------------------------------ names


@pytest.fixture(scope="module")
def names_model(shared_names, tmp_path_factory):
    """The session's char LM (conftest.SHARED_NAMES_TRAIN: 300 samples, seed 3), its task folder copied here."""
    return copy_task(shared_names.config, tmp_path_factory.mktemp("names") / "out"), shared_names.names


@pytest.mark.slow
def test_names_job_samples_reproducibly_and_flags_novel_names(names_model, tmp_path):
    config, training_names = names_model
    first = infer.run_config(config, save_main_session=False)
    assert first["rows"]["in"] == 300 == first["rows"]["out"] + first["rows"]["rejected"]
    table = read_table(first["predictions"])
    assert table.schema == NameOutputs.schema
    rows = table.to_pylist()
    assert all(row["name"][0].isupper() for row in rows)
    # Novel means: not among the train split of the training names (case-insensitive).
    train_split = {name for line, name in enumerate(sorted(training_names), start=1)
                   if assign_split(line_id(config.data.path, line), config.preprocess.splits) == "train"}
    assert all(row["novel"] == (row["name"].lower() not in train_split) for row in rows)
    assert sum(row["name"].lower().endswith("saurus") for row in rows) > len(rows) / 2
    # Same seed, same names, on either runner: each batch of prompts is seeded by its index.
    again = infer.run_config(elsewhere(config, tmp_path), MULTI_PROCESSING, save_main_session=False)
    assert read_table(again["predictions"]).column("name").equals(table.column("name"))
    other_seed = infer.run_config(with_infer(config, seed=4), save_main_session=False)
    assert not read_table(other_seed["predictions"]).column("name").equals(table.column("name"))


# ------------------------------------------------------------------------------ a failing model call


class FailsOnBoom(tf.Module):
    """A binary classifier whose model call fails for any batch holding the text "boom"."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        has_boom = tf.reduce_any(tf.equal(text, "boom"))
        with tf.control_dependencies([tf.debugging.assert_equal(has_boom, False, message="boom in batch")]):
            rows = tf.shape(text)[0]
            return {"label": tf.zeros([rows], tf.int64), "probability": tf.fill([rows], 0.25),
                    "tokens": tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.int64)}


def test_a_batch_whose_model_call_fails_is_rejected_row_by_row_and_the_job_goes_on(tmp_path):
    model_path = tmp_path / "model" / "1"
    module = FailsOnBoom()
    tf.saved_model.save(module, str(model_path), signatures={"serving_default": module.serve})
    (model_path / "model_card.json").write_text(json.dumps({"task": "flaky", "max_lengths": {"tokens": 64}}))
    # Same-length rows go to one bucket: batches of 4 in file order, the second holds "boom".
    texts = ["aaaa", "bbbb", "cccc", "dddd", "eeee", "boom", "ffff", "gggg", "hhhh", "iiii"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    config = config_from_dict({
        "task": {"name": "flaky", "kind": "classifier", "classes": ["no", "yes"]},
        "data": {"format": "text", "path": str(tmp_path / "in.txt"), "label_column": 1},
        # 4 rows of 10 fail: over the default 1 % failure threshold, under this one.
        "infer": {"model_path": str(model_path), "max_batch_size": 4, "min_batch_size": 1, "max_failure_rate": 0.5},
        "output_dir": str(tmp_path / "out"),
    })
    summary = infer.run_config(config, save_main_session=False)
    assert summary["rows"] == {**summary["rows"], "in": 10, "out": 6, "rejected": 4}
    assert summary["failures"] == {**summary["failures"], "rows": 4, "rate": 0.4, "max_rate": 0.5}
    assert sorted(read_table(summary["predictions"]).column("text").to_pylist()) == [
        "aaaa", "bbbb", "cccc", "dddd", "hhhh", "iiii"]
    rejected = read_table(summary["rejected"]).to_pylist()
    assert sorted((r["raw"], r["stage"], r["code"]) for r in rejected) == [
        (t, "infer", "inference_error") for t in ("boom", "eeee", "ffff", "gggg")]
    assert all("boom in batch" in r["reason"] for r in rejected)


def save_flaky_model(module: tf.Module, folder) -> str:
    """Saves ``module`` as the SavedModel of a binary "flaky" task; returns its path."""
    model_path = folder / "model" / "1"
    tf.saved_model.save(module, str(model_path), signatures={"serving_default": module.serve})
    (model_path / "model_card.json").write_text(json.dumps({"task": "flaky", "max_lengths": {"tokens": 64}}))
    return str(model_path)


def flaky_config(model_path: str, corpus: str, folder, **infer_keys):
    return config_from_dict({
        "task": {"name": "flaky", "kind": "classifier", "classes": ["no", "yes"]},
        "data": {"format": "text", "path": corpus, "label_column": 1},
        "infer": {"model_path": model_path, "max_batch_size": 4, "min_batch_size": 1, **infer_keys},
        "output_dir": str(folder / "out"),
    })


def test_one_failed_batch_in_hundreds_of_rows_stays_under_the_default_failure_threshold(tmp_path):
    model_path = save_flaky_model(FailsOnBoom(), tmp_path)
    texts = [f"{i:04d}" for i in range(499)] + ["boom"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    summary = infer.run_config(flaky_config(model_path, str(tmp_path / "in.txt"), tmp_path), save_main_session=False)
    failed = read_table(summary["rejected"]).to_pylist()
    # The batch of 4 that held "boom" failed: 0.8 % of the rows, under infer.max_failure_rate 0.01.
    assert len(failed) == 4 and "boom" in {r["raw"] for r in failed}
    assert summary["rows"] == {**summary["rows"], "in": 500, "out": 496, "rejected": 4}
    assert summary["failures"] == {**summary["failures"], "rows": 4, "rate": 0.008, "max_rate": 0.01}
    assert sorted(e["id"] for e in summary["failures"]["first"]) == sorted(r["id"] for r in failed)


class Broken(tf.Module):
    """A binary classifier whose every model call fails."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        with tf.control_dependencies([tf.debugging.assert_equal(tf.size(text), -1, message="the model is broken")]):
            rows = tf.shape(text)[0]
            return {"label": tf.zeros([rows], tf.int64), "probability": tf.fill([rows], 0.25),
                    "tokens": tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.int64)}


def test_a_broken_model_fails_the_job_naming_its_first_errors(tmp_path):
    model_path = save_flaky_model(Broken(), tmp_path)
    texts = [f"row {i:03d}" for i in range(40)]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    config_path = tmp_path / "flaky.yaml"
    config_path.write_text(flaky_config(model_path, str(tmp_path / "in.txt"), tmp_path).to_yaml(), encoding="utf-8")
    with pytest.raises(Exception, match=r"40 of 40 rows \(100.0%\) failed, over infer.max_failure_rate 0.01; "
                                        r"first errors: .*\(infer\) inference_error: .*the model is broken") as failure:
        infer.run(["--config", str(config_path)], save_main_session=False)
    task_dir = tmp_path / "out" / "flaky"
    assert not (task_dir / "infer_summary.json").exists()  # no mark of a good run
    rejected = read_table(str(task_dir / "rejected")).to_pylist()  # written before the job failed
    assert len(rejected) == 40 and {r["code"] for r in rejected} == {"inference_error"}
    ids = sorted(r["id"] for r in rejected)
    message = str(failure.value)
    assert all(f"{row_id} (infer) inference_error" in message for row_id in ids[:5])
    assert not any(f"{row_id} (infer)" in message for row_id in ids[5:])
    # The threshold is the switch: allowed every failure, the same job ends green.
    summary = infer.run(["--config", str(config_path), "--set", "infer.max_failure_rate=1"], save_main_session=False)
    assert summary["rows"] == {**summary["rows"], "in": 40, "out": 0, "rejected": 40}


def test_the_pipeline_itself_writes_the_summary_with_exact_counts(emoji_model, tmp_path):
    config = elsewhere(emoji_infer_config(emoji_model), tmp_path)
    with beam.Pipeline(options=pipeline_options([], save_main_session=False)) as p:  # no launcher
        infer.build_pipeline(p, config, serving.plan_serving(config))
    summary = json.load(open(layout.infer_summary_path(config), encoding="utf-8"))
    predictions = read_table(layout.predictions_dir(config)).to_pylist()
    low = sum(min(s["probability"] for s in row["sentences"]) < config.infer.min_confidence for row in predictions)
    assert summary["rows"] == {"in": 9, "out": 4, "rejected": 5, "low_confidence": low, "truncated": 1, "flagged": 0}
    assert summary["rejections"] == {
        "by_stage": {"read": 3, "validate": 2},
        "by_reason": {"read/malformed_json": 1, "read/missing_column": 1, "read/not_text": 1,
                      "validate/empty_text": 1, "validate/too_many_chars": 1}}
    assert summary["failures"] == {"rows": 0, "rate": 0.0, "max_rate": 0.01, "first": []}
    assert summary["files"] == {"predictions": len(parquet_files(layout.predictions_dir(config))),
                                "rejected": len(parquet_files(layout.infer_rejected_dir(config)))}
    assert "seconds" not in summary and "rows_per_second" not in summary  # the launcher's wall time only
    assert summary["config_hash"] == config.stage_hash("infer")


def files_and_bytes(folder) -> dict[str, bytes]:
    """Every file under ``folder`` with its contents."""
    return {os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


def test_a_typo_in_the_input_path_fails_naming_it_and_keeps_the_last_outputs(emoji_model, tmp_path):
    config = elsewhere(emoji_infer_config(emoji_model, min_batch_size=1), tmp_path)  # valid as a YAML file
    config_path = tmp_path / "emoji.yaml"
    config_path.write_text(config.to_yaml(), encoding="utf-8")
    infer.run(["--config", str(config_path)], save_main_session=False)
    before = files_and_bytes(config.task_dir)
    assert "infer_summary.json" in before and any(name.startswith("predictions/") for name in before)
    with pytest.raises(FileNotFoundError, match=r"^infer\.input\.path: .*annotate\.jsnol"):
        infer.run(["--config", str(config_path), "--set",
                   f"infer.input.path={config.infer.input.path.replace('.jsonl', '.jsnol')}"], save_main_session=False)
    assert files_and_bytes(config.task_dir) == before


@pytest.mark.slow
def test_rejected_rows_are_sharded_like_the_predictions_on_a_multi_worker_run(emoji_model, tmp_path):
    config, folder = emoji_model
    # Every other row too long: 1,200 rejections of 3,000 characters, several 1 MiB tables per worker.
    texts = ["x" * 3000 if i % 2 else f"we eat food now {i}" for i in range(2400)]
    (tmp_path / "mixed.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    data = dataclasses.replace(config.data, format="text", path=str(tmp_path / "mixed.txt"), label_column=None,
                               header=False)
    run = elsewhere(with_infer(config, input=data, max_chars=500, num_shards=4), tmp_path)
    summary = infer.run_config(run, MULTI_PROCESSING, save_main_session=False)
    assert summary["rows"] == {**summary["rows"], "in": 2400, "out": 1200, "rejected": 1200}
    files = parquet_files(summary["rejected"])
    per_file = [pq.read_table(path).num_rows for path in files]
    assert [os.path.basename(path) for path in files] == [f"rejected-0000{i}-of-00004.parquet" for i in range(4)]
    assert sum(per_file) == 1200 and sum(count > 0 for count in per_file) >= 2, per_file
    assert summary["files"] == {"predictions": 4, "rejected": 4}
    assert len(set(read_table(summary["rejected"]).column("id").to_pylist())) == 1200
