"""The training job end to end: accuracy, export parity, two workers, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import yaml

from seqbeam.pipelines import layout, preprocess, train
from seqbeam.configs.schema import config_from_dict

from conftest import read_examples

# Every test here trains a model end to end (one of them on two worker processes, one killed and resumed).
pytestmark = pytest.mark.slow

# The embedded Reber task is learnt in a jump: once the GRU links the second character to the second to
# last, accuracy goes from ~98.4 % (the inner grammar only) to ~100 %, at an epoch that depends on the
# initialisation and on which rows each shard holds (Beam's shard assignment varies between runs).
# Measured at 12 epochs: GRU(32), batches of 64 (the old fixture) failed the suite at 97.9 % test and
# ended at 99.2 % / 98.4 % validation on train.seed 1 / 2; GRU(64), batches of 32, on train.seed 0-5: test 99.9-100 %, last-epoch
# validation 99.7-100 % (one epoch-11 dip to 96.4 % on seed 0). A learning-rate decay of 0.9 left seed
# 3 at 97.7 %, a rate of 0.01 swung late: neither is used.
REBER_TRAIN = {"model": {"family": "grammar", "cell": "gru", "embedding_dim": 8, "units": 64},
               "epochs": 12, "batch_size": 32, "learning_rate": 0.005, "early_stopping_patience": 0}


def reber_config(out_dir: str, num_rows: int = 10_000, **train_overrides) -> dict:
    return {
        "task": {"name": "reber", "kind": "classifier", "classes": ["ungrammatical", "grammatical"]},
        "data": {"format": "generated", "generator": {"name": "reber", "num_rows": num_rows, "seed": 4}},
        # The strings generated here have at most 46 characters (10,000 of seed 4; 2,000 of seed 77: 38):
        # 48 cuts none, and the GRU, which steps through every position, runs a quarter fewer steps than at 64.
        "preprocess": {"tokenizer": {"level": "char", "lowercase": False, "normalization": "none"},
                       "max_length": 48, "num_shards": 2, "batch_size": 256},
        "train": {**REBER_TRAIN, **train_overrides},
        "output_dir": out_dir,
    }


@pytest.fixture(scope="module")
def reber_run(tmp_path_factory):
    config = config_from_dict(reber_config(str(tmp_path_factory.mktemp("reber"))))
    preprocess.run_config(config, save_main_session=False)
    return config, train.run_config(config)


def test_reber_classifier_reaches_99_percent_on_held_out_strings(reber_run):
    _, summary = reber_run
    assert summary["metrics"]["test"]["accuracy"] >= 0.99
    assert summary["metrics"]["valid"]["accuracy"] >= 0.99


def test_training_writes_history_metrics_and_a_model_card(reber_run):
    config, summary = reber_run
    history = json.load(open(os.path.join(layout.train_dir(config), "history.json")))
    assert len(history["loss"]) == REBER_TRAIN["epochs"] and history["loss"][-1] < history["loss"][0]
    card = json.load(open(os.path.join(summary["model_path"], "model_card.json")))
    assert card["task"] == "reber" and card["config_hash"] == config.stage_hash("train")
    assert card["metrics"]["test"]["accuracy"] == summary["metrics"]["test"]["accuracy"]
    assert os.listdir(os.path.join(summary["model_path"], "assets")) == ["tokens.txt"]


def hand_metrics(model, rows: list[dict]) -> dict:
    """Binary cross-entropy and accuracy of ``model`` computed here, over each of ``rows`` once."""
    probability = model(np.array([row["tokens"] for row in rows]), training=False).numpy()[:, 0]
    p = np.clip(probability.astype("float64"), 1e-7, 1 - 1e-7)
    y = np.array([row["label"][0] for row in rows], dtype="float64")
    return {"loss": float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))),
            "accuracy": float(np.mean((p > 0.5) == (y == 1)))}


def assert_metrics_close(ours: dict, reference: dict, rtol: float = 1e-4) -> None:
    assert sorted(ours) == sorted(reference)
    for name in reference:
        np.testing.assert_allclose(ours[name], reference[name], rtol=rtol, atol=1e-7, err_msg=name)


def test_validation_and_metrics_count_every_valid_example_once(reber_run):
    config, summary = reber_run
    metadata = config_metadata(config)
    history = json.load(open(os.path.join(layout.train_dir(config), "history.json")))
    for split in ("valid", "test"):
        rows = read_examples(layout.data_dir(config), split)
        assert len(rows) == metadata["rows"][split] and len(rows) % REBER_TRAIN["batch_size"], "the last batch must be partial"
        assert_metrics_close(summary["metrics"][split], hand_metrics(summary["model"], rows))
    # Keras read the finite validation split whole after each epoch: the last one saw the final weights.
    assert_metrics_close({"loss": history["val_loss"][-1], "accuracy": history["val_accuracy"][-1]},
                         summary["metrics"]["valid"], rtol=1e-5)


def test_exported_model_serves_raw_text_like_the_in_memory_model(reber_run):
    import tensorflow_text  # noqa: F401

    config, summary = reber_run
    rows = read_examples(layout.data_dir(config), "test")[:64]
    vocab = open(os.path.join(layout.data_dir(config), "vocab", "tokens.txt"), encoding="utf-8").read().split("\n")
    texts = ["".join(vocab[i] for i in row["tokens"] if i > 3) for row in rows]
    served = tf.saved_model.load(summary["model_path"]).signatures["serving_default"](text=tf.constant(texts))
    in_memory = summary["model"](np.array([row["tokens"] for row in rows]), training=False).numpy()[:, 0]
    np.testing.assert_allclose(served["probability"].numpy(), in_memory, rtol=1e-5, atol=1e-6)
    assert served["label"].numpy().tolist() == [int(p >= 0.5) for p in in_memory]
    assert served["label"].numpy().tolist() == [row["label"][0] for row in rows]


def _write_config(tmp_path, raw: dict) -> str:
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(path)


def _train_command(config_path: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "seqbeam.pipelines.cli", "train", "--config", config_path, *extra]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_inference_job_classifies_unseen_strings(reber_run):
    import dataclasses

    import pyarrow.parquet as pq

    from seqbeam.pipelines import infer
    from seqbeam.configs.schema import DataConfig, GeneratorConfig
    from seqbeam.transforms.postprocess import ReberOutputs
    from seqbeam.transforms.synthetic import generate_shard

    config, _ = reber_run
    generator = GeneratorConfig(name="reber", num_rows=2000, seed=77, rows_per_shard=2000)
    config = dataclasses.replace(config, infer=dataclasses.replace(
        config.infer, input=DataConfig(format="generated", generator=generator)))
    summary = infer.run_config(config, save_main_session=False)
    assert summary["rows"] == {**summary["rows"], "in": 2000, "out": 2000, "rejected": 0}
    table = pq.read_table(summary["predictions"])
    assert table.schema == ReberOutputs.schema
    truth = {row.id: row for row in generate_shard(generator, 0)}
    rows = table.to_pylist()
    assert all(row["text"] == truth[row["id"]].text for row in rows)
    accuracy = np.mean([row["grammatical"] == bool(truth[row["id"]].label) for row in rows])
    assert accuracy >= 0.99
    assert all(row["grammatical"] == (row["probability"] >= 0.5) for row in rows)


def test_two_workers_on_localhost_train_and_only_the_chief_writes(tmp_path):
    raw = reber_config(str(tmp_path / "out"), num_rows=800, epochs=2, batch_size=16)
    config = config_from_dict(raw)
    preprocess.run_config(config, save_main_session=False)
    config_path = _write_config(tmp_path, raw)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(_train_command(config_path), env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [worker.communicate(timeout=240)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert all("on 2 replica(s)" in out for out in outputs)
    metrics = json.load(open(os.path.join(layout.train_dir(config), "metrics.json")))
    assert metrics["replicas"] == 2 and metrics["epochs_run"] == 2
    assert metrics["steps"] == 2 * -(-config_rows(config) // 32)  # global batch: 2 workers x 16
    assert len(os.listdir(os.path.join(config.task_dir, "model"))) == 1  # the chief alone exports

    # Each worker evaluated its own shard file; the figures are those of every example once.
    model = trained_model(config)
    metadata = config_metadata(config)
    for split in ("valid", "test"):
        rows = read_examples(layout.data_dir(config), split)
        assert len(rows) == metadata["rows"][split] and len(rows) % 32, "the last global batch must be partial"
        assert_metrics_close(metrics["metrics"][split], hand_metrics(model, rows))
    history = json.load(open(os.path.join(layout.train_dir(config), "history.json")))
    assert_metrics_close({"loss": history["val_loss"][-1], "accuracy": history["val_accuracy"][-1]},
                         metrics["metrics"]["valid"], rtol=1e-5)


def trained_model(config):
    """The model of the last epoch checkpoint that the chief kept."""
    from seqbeam.models.tasks import build_model

    model = build_model(config, config_metadata(config), layout.data_dir(config))
    latest = tf.train.latest_checkpoint(os.path.join(layout.train_dir(config), "checkpoints"))
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model


def test_a_killed_run_resumes_from_its_backup_to_the_same_step_count(tmp_path):
    # 2,000 strings in batches of 8: 200 steps an epoch, seconds each, so the kill lands inside one.
    raw = reber_config(str(tmp_path / "out"), num_rows=2000, epochs=4, batch_size=8)
    config = config_from_dict(raw)
    preprocess.run_config(config, save_main_session=False)
    config_path = _write_config(tmp_path, raw)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    backup = os.path.join(layout.train_dir(config), "backup", "training_metadata.json")

    first = subprocess.Popen(_train_command(config_path, "--no-export"), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not os.path.exists(backup) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert os.path.exists(backup), "no backup was written before the deadline"
    time.sleep(1.0)  # well inside the next epoch
    first.send_signal(signal.SIGKILL)
    first.wait()
    epochs_done = json.load(open(backup))["epoch"]
    assert 1 <= epochs_done < 4

    resumed = subprocess.run(_train_command(config_path, "--no-export"), env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    history = json.load(open(os.path.join(layout.train_dir(config), "history.json")))
    metrics = json.load(open(os.path.join(layout.train_dir(config), "metrics.json")))
    steps_per_epoch = -(-config_rows(config) // 8)
    assert len(history["loss"]) == 4 - epochs_done  # only the epochs left were run
    assert metrics["steps"] == 4 * steps_per_epoch  # the optimizer's step count of an uninterrupted run
    assert not os.path.exists(os.path.dirname(backup))  # removed once training completed


def config_metadata(config) -> dict:
    from seqbeam.models.inputs import load_metadata

    return load_metadata(layout.data_dir(config))


def config_rows(config) -> int:
    return config_metadata(config)["rows"]["train"]


@pytest.mark.parametrize("epochs, logged", [
    (3, [1, 2, 3]),
    (39, list(range(1, 40))),
    (300, [1, *range(15, 301, 15)]),
    (301, [1, *range(15, 301, 15), 301]),
])
def test_the_progress_log_keeps_every_epoch_of_a_short_run_and_about_21_lines_of_a_long_one(caplog, epochs, logged):
    progress = train._ProgressLog(epochs)
    with caplog.at_level("INFO", logger=train.__name__):
        for epoch in range(epochs):
            progress.on_epoch_begin(epoch)
            progress.on_epoch_end(epoch, {"loss": 0.5})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [int(line.split()[1].split("/")[0]) for line in lines] == logged
    assert lines[-1].startswith(f"epoch {logged[-1]}/{epochs} (") and lines[-1].endswith("loss 0.5000")
