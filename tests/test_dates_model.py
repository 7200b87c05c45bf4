"""The date normalizer end to end: generated dates -> trained seq2seq -> SavedModel on raw text."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from seqbeam.pipelines import layout, preprocess, train
from seqbeam.models.decoding import Seq2SeqDecoder
from seqbeam.configs.schema import config_from_dict
from seqbeam.transforms.date_generator import generate_dates
from seqbeam.transforms.synthetic import shard_seed
from seqbeam.transforms.validate import assign_split

from conftest import read_examples

# A seq2seq model trained to 99 % exact match, then served and run as a job: minutes.
pytestmark = pytest.mark.slow

# Measured: 15,000 dates in both day orders (1,506 held out), 6 epochs in batches of similar length
# (107 s to train here): 100 % exact match on clean held-out dates, 99.8 % overall, 98.1 % noisy.
ROWS, SEED, ROWS_PER_SHARD = 15_000, 7, 5_000


@pytest.fixture(scope="module")
def dates_run(tmp_path_factory):
    config = config_from_dict({
        "task": {"name": "dates", "kind": "seq2seq"},
        "data": {"format": "generated", "generator": {"name": "dates", "num_rows": ROWS, "seed": SEED,
                                                      "rows_per_shard": ROWS_PER_SHARD, "noise_rate": 0.1,
                                                      "day_first": "both"}},
        "preprocess": {"tokenizer": {"level": "char"}, "max_length": 42, "max_target_length": 12,
                       "overflow": "reject", "num_shards": 2},
        "train": {"model": {"family": "seq2seq", "embedding_dim": 32, "units": 128, "attention": True,
                            "dropout": 0.0},
                  "epochs": 6, "batch_size": 64, "learning_rate": 0.003, "clipnorm": 1.0,
                  "early_stopping_patience": 0, "length_window": 16, "export": {"decode": "greedy"}},
        "output_dir": str(tmp_path_factory.mktemp("dates")),
    })
    preprocess.run_config(config, save_main_session=False)
    return config, train.run_config(config)


def held_out_dates(config) -> list:
    """The generated test-split examples, regenerated from the seed (raw text, ISO, format, noisy)."""
    examples = []
    for shard in range(ROWS // ROWS_PER_SHARD):
        start = shard * ROWS_PER_SHARD
        for i, example in enumerate(generate_dates(ROWS_PER_SHARD, shard_seed(SEED, shard), day_first=None,
                                                   noise_rate=0.1), start=start):
            if assign_split(f"dates-{SEED}:{i}", config.preprocess.splits) == "test":
                examples.append(example)
    return examples


def test_served_model_normalizes_held_out_dates(dates_run):
    import tensorflow_text  # noqa: F401

    config, summary = dates_run
    examples = held_out_dates(config)
    serve = tf.saved_model.load(summary["model_path"]).signatures["serving_default"]
    predicted = serve(text=tf.constant([e.raw for e in examples]),
                      day_first=tf.constant([e.day_first for e in examples]))["text"].numpy()
    correct = np.array([p.decode() == e.iso for p, e in zip(predicted, examples)])
    clean = np.array([not e.noisy for e in examples])
    assert correct[clean].mean() >= 0.99, f"clean exact match {correct[clean].mean():.4f}"
    assert correct.mean() >= 0.98, f"overall exact match {correct.mean():.4f}"


def test_export_decodes_like_the_in_memory_model(dates_run):
    import tensorflow_text  # noqa: F401

    config, summary = dates_run
    data_dir = layout.data_dir(config)
    rows = read_examples(data_dir, "test")[:100]
    decoder = Seq2SeqDecoder(summary["model"], 12)
    ids, log_prob = decoder.greedy(tf.constant([r["source"] for r in rows], tf.int64))
    target = open(f"{data_dir}/vocab/target.txt", encoding="utf-8").read().split("\n")
    source = open(f"{data_dir}/vocab/source.txt", encoding="utf-8").read().split("\n")
    in_memory = ["".join(target[i] for i in row if i > 3) for row in ids.numpy()]
    texts = ["".join(source[i] for i in r["source"] if i > 0) for r in rows]
    # The texts start with their rows' day-order tokens, which the served model keeps.
    served = tf.saved_model.load(summary["model_path"]).signatures["serving_default"](
        text=tf.constant(texts), day_first=tf.constant([True] * len(texts)))
    assert [t.decode() for t in served["text"].numpy()] == in_memory
    np.testing.assert_allclose(served["score"].numpy(), log_prob.numpy(), rtol=1e-4, atol=1e-5)


def test_one_model_reads_both_day_orders(dates_run):
    import tensorflow_text  # noqa: F401

    _, summary = dates_run
    model = tf.saved_model.load(summary["model_path"])
    assert json.load(open(f"{summary['model_path']}/model_card.json"))["day_orders"] == ["month_first", "day_first"]
    texts = ["03/04/2019", "03/04/2019", "3.4.2019", "3.4.2019", "12-11-2020", "12-11-2020", "\ue001 03/04/2019"]
    day_first = [False, True, False, True, False, True, False]  # the last text says its own order
    for name in ("serving_default", "greedy"):
        out = model.signatures[name](text=tf.constant(texts), day_first=tf.constant(day_first))["text"].numpy()
        assert [t.decode() for t in out] == ["2019-03-04", "2019-04-03", "2019-03-04", "2019-04-03", "2020-12-11",
                                             "2020-11-12", "2019-04-03"], name


def test_inference_job_normalizes_unseen_dates_and_flags_what_is_not_a_date(dates_run):
    import dataclasses

    import pyarrow.parquet as pq

    from seqbeam.pipelines import infer
    from seqbeam.configs.schema import DataConfig, GeneratorConfig
    from seqbeam.transforms.postprocess import DateOutputs, check_date

    config, _ = dates_run
    rows, seed = 3000, 1234
    generator = GeneratorConfig(name="dates", num_rows=rows, seed=seed, noise_rate=0.2, rows_per_shard=rows,
                                day_first="both")
    config = dataclasses.replace(config, infer=dataclasses.replace(
        config.infer, input=DataConfig(format="generated", generator=generator), max_batch_size=256))
    summary = infer.run_config(config, save_main_session=False)
    assert summary["rows"] == {**summary["rows"], "in": rows, "out": rows, "rejected": 0}

    table = pq.read_table(summary["predictions"])
    assert table.schema == DateOutputs.schema
    truth = {f"dates-{seed}:{i}": e
             for i, e in enumerate(generate_dates(rows, shard_seed(seed, 0), day_first=None, noise_rate=0.2))}
    predicted = table.to_pylist()
    correct = [(row["iso_date"] == truth[row["id"]].iso, truth[row["id"]].noisy) for row in predicted]
    clean = [ok for ok, noisy in correct if not noisy]
    assert sum(clean) / len(clean) >= 0.99, f"clean exact match {sum(clean) / len(clean):.4f}"
    for row in predicted:
        assert row["raw"] == truth[row["id"]].raw  # without the row's day-order token
        # Every row's verdict is exactly what the calendar and the input's weekday say of the output.
        assert (row["iso_date"], row["valid"], row["flag"]) == tuple(check_date(row["output"], row["raw"]))
        assert (row["flag"] is None) == row["valid"]
    assert summary["rows"]["flagged"] == sum(not row["valid"] for row in predicted)


def test_seqbeam_infer_reads_a_corpus_in_the_order_of_its_config(dates_run, tmp_path):
    import dataclasses

    import pyarrow.parquet as pq

    from seqbeam.configs.schema import DataConfig
    from seqbeam.pipelines import infer, serving

    config, summary = dates_run
    corpus = tmp_path / "dates.txt"
    corpus.write_text("03/04/2019\n3.4.2019\nApril 3, 2019\n", encoding="utf-8")
    read = {}
    for day_first in (False, True):
        job = dataclasses.replace(config, output_dir=str(tmp_path / f"out-{day_first}"), infer=dataclasses.replace(
            config.infer, input=DataConfig(format="text", path=str(corpus)), model_path=summary["model_path"],
            day_first=day_first))
        rows = pq.read_table(infer.run_config(job, save_main_session=False)["predictions"]).to_pylist()
        read[day_first] = [row["iso_date"] for row in sorted(rows, key=lambda r: int(r["id"].rsplit(":", 1)[1]))]
    assert read == {False: ["2019-03-04", "2019-03-04", "2019-04-03"], True: ["2019-04-03", "2019-04-03", "2019-04-03"]}
    card = {"task": "dates", "family": "seq2seq", "day_orders": ["month_first"]}
    with pytest.raises(ValueError, match="infer.day_first"):
        serving.check_day_order(card, "m", day_first=True)
    serving.check_day_order(card, "m", day_first=False)
