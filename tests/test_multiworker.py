"""Multi-worker training: two worker processes on 127.0.0.1, in sync, checkpointed, resumable.

This file is also the workers' program: ``python tests/test_multiworker.py --worker ...``
trains the models below under MultiWorkerMirroredStrategy (TF_CONFIG from the
environment) and prints one ``RESULT {json}`` line per model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqbeam.models.multiworker import evaluate_multi_worker, is_chief, tf_config_from_environment, train_multi_worker

FEATURES = 8
GLOBAL_BATCH = 16
LM_LENGTH, LM_VOCAB = 10, 12
WORKER_TIMEOUT_S = 120


# --- models and data shared by the workers and the in-process references -------------------


def build_model(kind: str) -> keras.Model:
    """A compiled model with seeded initializers (the same weights in every process) and SGD,
    whose updates, unlike Adam's, show a loss scaled by the wrong batch size."""
    if kind == "dense":
        inputs = keras.Input(shape=(FEATURES,), name="x")
        hidden = keras.layers.Dense(8, activation="relu", name="hidden",
                                    kernel_initializer=keras.initializers.GlorotUniform(seed=1))(inputs)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="probability",
                                     kernel_initializer=keras.initializers.GlorotUniform(seed=2))(hidden)
        model = keras.Model(inputs, outputs, name="dense")
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss=keras.losses.BinaryCrossentropy(),
                      metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
                      weighted_metrics=[keras.metrics.MeanSquaredError(name="weighted_mse")])
        return model
    if kind == "char_lm":
        from seqbeam.models.char_lm import build_char_lm

        # Embedding(mask_zero) -> LSTM -> logits: the output carries a mask (the masked-loss path).
        model = build_char_lm(vocab_size=LM_VOCAB, max_length=LM_LENGTH, embedding_dim=8, units=16)
        model.set_weights([np.random.default_rng(i).uniform(-0.3, 0.3, w.shape).astype("float32")
                           for i, w in enumerate(model.get_weights())])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")],  # the mask only
                      weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        return model
    raise ValueError(f"unknown model kind {kind!r}")


def examples(kind: str, rows: int = 256, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(x, y, sample_weight) arrays: a linearly separable task, or 0-padded token sequences."""
    rng = np.random.default_rng(seed)
    if kind == "dense":
        x = rng.normal(size=(rows, FEATURES)).astype("float32")
        y = (x @ np.linspace(-1.0, 1.0, FEATURES) > 0).astype("float32")[:, None]
        return x, y, np.where(y[:, 0] > 0, 1.0, 0.5).astype("float32")  # positives weigh twice as much
    lengths = rng.integers(2, LM_LENGTH + 1, size=rows)
    period = rng.integers(1, 4, size=rows)
    positions = np.arange(LM_LENGTH + 1)
    ids = 2 + (positions[None, :] * period[:, None]) % (LM_VOCAB - 2)  # predictable sequences
    ids = np.where(positions[None, :] <= lengths[:, None], ids, 0).astype("int32")
    tokens, targets = ids[:, :-1], ids[:, 1:]
    return tokens, targets, (targets != 0).astype("float32")


def batches(kind: str, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(examples(kind, seed=seed)).repeat().batch(batch_size)


def dataset_fn(kind: str, seed: int = 0):
    """The per-worker dataset_fn: batches of one replica, batch i of the stream to worker i % n."""

    def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return (batches(kind, context.get_per_replica_batch_size(GLOBAL_BATCH), seed=seed)
                .shard(context.num_input_pipelines, context.input_pipeline_id))

    return make


VALID_SEED, VALID_STEPS = 1, 2


def checksum(model: keras.Model) -> str:
    return hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in model.get_weights())).hexdigest()


# --- the worker program ----------------------------------------------------------------------


def worker_main(argv=None) -> None:
    """Trains each model of ``--models`` in turn on the cluster of TF_CONFIG; one RESULT line each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--models", required=True, help="comma-separated: dense, char_lm")
    parser.add_argument("--checkpoint-dir", required=True, help="one sub-folder per model")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tf.config.threading.set_intra_op_parallelism_threads(1)  # two workers share two cores
    tf.config.threading.set_inter_op_parallelism_threads(1)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TensorFlow op
    for kind in args.models.split(","):
        result = train_multi_worker(
            lambda: build_model(kind), dataset_fn(kind), strategy=strategy, epochs=args.epochs,
            steps_per_epoch=args.steps, checkpoint_dir=os.path.join(args.checkpoint_dir, kind),
            validation=(dataset_fn(kind, seed=VALID_SEED), VALID_STEPS), global_batch_size=GLOBAL_BATCH)
        model = result.pop("model")
        evaluation = evaluate_multi_worker(model, dataset_fn(kind, seed=VALID_SEED), strategy=strategy,
                                           steps=VALID_STEPS, global_batch_size=GLOBAL_BATCH)
        report = {**result, "kind": kind, "evaluation": evaluation,
                  "optimizer_steps": int(model.optimizer.iterations.numpy()),
                  "checksum": checksum(model), "weights": [w.tolist() for w in model.get_weights()],
                  "is_chief": is_chief(tf_config_from_environment())}
        print("RESULT " + json.dumps(report), flush=True)


# --- launching a localhost cluster -----------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """Two worker processes of this file's program; their output goes to files for the tails.

    A context manager: whatever happens in the test, no worker outlives it.
    """

    def __init__(self, tmp_path, *args: str, name: str = "run"):
        hosts = [f"127.0.0.1:{port}" for port in free_ports(2)]
        self.scratch = tmp_path / f"{name}-tmp"  # the workers' TMPDIR: the non-chief's checkpoints
        self.scratch.mkdir()
        self.logs = [tmp_path / f"{name}-worker{i}.log" for i in range(2)]
        self.processes = []
        for index, log_path in enumerate(self.logs):
            tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
            env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2",
                   "TMPDIR": str(self.scratch), "CUDA_VISIBLE_DEVICES": ""}
            with open(log_path, "wb") as log:
                self.processes.append(subprocess.Popen(
                    [sys.executable, __file__, "--worker", *args], env=env, stdout=log, stderr=subprocess.STDOUT))

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()

    def output(self, index: int) -> str:
        return self.logs[index].read_text(errors="replace")

    def tails(self) -> str:
        """The end of each worker's output without the RESULT lines, for failure messages."""
        tails = []
        for index, process in enumerate(self.processes):
            lines = [line for line in self.output(index).splitlines() if not line.startswith("RESULT ")]
            tails.append(f"--- worker {index} (exit {process.poll()}) ---\n" + "\n".join(lines)[-2500:])
        return "\n".join(tails)

    def wait(self, timeout: float = WORKER_TIMEOUT_S) -> list[dict[str, dict]]:
        """Waits for both workers; returns their RESULT payloads by model, or fails with their output."""
        deadline = time.monotonic() + timeout
        try:
            for process in self.processes:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the workers did not finish within {timeout:.0f}s\n{self.tails()}")
        codes = [p.returncode for p in self.processes]
        assert codes == [0, 0], f"worker exit codes {codes}\n{self.tails()}"
        results = []
        for index in range(2):
            payloads = [json.loads(line[len("RESULT "):]) for line in self.output(index).splitlines()
                        if line.startswith("RESULT ")]
            assert payloads, f"worker {index} printed no RESULT line\n{self.tails()}"
            results.append({payload["kind"]: payload for payload in payloads})
        return results

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()


def latest_epoch(checkpoint_dir) -> int:
    path = tf.train.latest_checkpoint(str(checkpoint_dir))
    return int(path.rsplit("-", 1)[1]) if path else 0


# --- tests -----------------------------------------------------------------------------------


def test_is_chief_is_worker_0_or_the_chief_task():
    workers = {"worker": ["a:1", "b:2"]}
    assert is_chief({"cluster": workers, "task": {"type": "worker", "index": 0}})
    assert not is_chief({"cluster": workers, "task": {"type": "worker", "index": 1}})
    with_chief = {"chief": ["c:0"], **workers}
    assert is_chief({"cluster": with_chief, "task": {"type": "chief", "index": 0}})
    assert not is_chief({"cluster": with_chief, "task": {"type": "worker", "index": 0}})
    assert not is_chief({"cluster": with_chief, "task": {"type": "evaluator", "index": 0}})
    assert is_chief({}) and is_chief(None)


def fit_reference(kind: str, epochs: int, steps: int) -> tuple[keras.Model, dict]:
    """``Model.fit`` on one device over the global batches that the replicas see together."""
    model = build_model(kind)
    history = model.fit(batches(kind, GLOBAL_BATCH), epochs=epochs, steps_per_epoch=steps, verbose=0, shuffle=False)
    return model, history.history


def evaluate_reference(model: keras.Model, kind: str) -> dict:
    return model.evaluate(batches(kind, GLOBAL_BATCH, seed=VALID_SEED), steps=VALID_STEPS, verbose=0,
                          return_dict=True)


def last_validation(history: dict) -> dict:
    return {name[len("val_"):]: values[-1] for name, values in history.items() if name.startswith("val_")}


def train_figures(history: dict) -> dict:
    return {name: values for name, values in history.items() if not name.startswith("val_")}


def assert_figures_close(ours: dict, reference: dict, rtol: float) -> None:
    assert sorted(ours) == sorted(reference)
    for name in reference:
        np.testing.assert_allclose(ours[name], reference[name], rtol=rtol, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("kind", ["dense", "char_lm"])
def test_on_one_device_the_loop_matches_model_fit_and_evaluate(tmp_path, kind):
    # The default strategy: one replica, so loss and metrics must be exactly Keras' (sample
    # weights for "dense"; an output mask and token weights for "char_lm").
    strategy = tf.distribute.get_strategy()
    reference, reference_history = fit_reference(kind, epochs=2, steps=4)
    result = train_multi_worker(lambda: build_model(kind), dataset_fn(kind), strategy=strategy, epochs=2,
                                steps_per_epoch=4, checkpoint_dir=str(tmp_path / "ckpt"),
                                validation=(dataset_fn(kind, seed=VALID_SEED), VALID_STEPS))
    model = result["model"]
    assert_figures_close(train_figures(result["history"]), reference_history, rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    evaluation = evaluate_multi_worker(model, dataset_fn(kind, seed=VALID_SEED), strategy=strategy, steps=VALID_STEPS)
    assert_figures_close(evaluation, evaluate_reference(reference, kind), rtol=1e-5)
    # Validation reads the same batches after every epoch: the last one is an evaluation of the final weights.
    assert_figures_close(last_validation(result["history"]), evaluation, rtol=1e-6)
    assert result["steps"] == 8 and latest_epoch(tmp_path / "ckpt") == 2

    # The same command again finds every epoch done: it restores the weights and trains nothing.
    again = train_multi_worker(lambda: build_model(kind), dataset_fn(kind), strategy=strategy, epochs=2,
                               steps_per_epoch=4, checkpoint_dir=str(tmp_path / "ckpt"))
    assert (again["initial_epoch"], again["epochs_run"], again["steps"], again["history"]) == (2, 0, 8, {})
    assert checksum(again["model"]) == checksum(model)


def test_a_dataset_too_short_for_the_schedule_fails_before_training(tmp_path):
    def finite(context):  # 256 rows: 16 batches, fewer than the 2 x 10 steps asked for
        return tf.data.Dataset.from_tensor_slices(examples("dense")).batch(GLOBAL_BATCH)

    with pytest.raises(ValueError, match="holds 16 batches but 20 are needed"):
        train_multi_worker(lambda: build_model("dense"), finite, strategy=tf.distribute.get_strategy(), epochs=2,
                           steps_per_epoch=10, checkpoint_dir=str(tmp_path / "ckpt"))


@pytest.fixture(scope="module")
def two_worker_run(tmp_path_factory) -> SimpleNamespace:
    """One cluster run training both models, shared by the in-sync tests (start-up is the slow part)."""
    tmp_path = tmp_path_factory.mktemp("in_sync")
    run = SimpleNamespace(epochs=3, steps=8, checkpoints=tmp_path / "checkpoints")
    with Cluster(tmp_path, "--models", "dense,char_lm", "--checkpoint-dir", str(run.checkpoints),
                 "--epochs", str(run.epochs), "--steps", str(run.steps)) as run.cluster:
        run.results = run.cluster.wait()
    return run


@pytest.mark.parametrize("kind", ["dense", "char_lm"])
def test_two_workers_train_in_sync_like_one_device_on_the_global_batch(two_worker_run, kind):
    cluster, epochs, steps = two_worker_run.cluster, two_worker_run.epochs, two_worker_run.steps
    chief, other = two_worker_run.results[0][kind], two_worker_run.results[1][kind]
    tails = cluster.tails()

    assert [chief["num_replicas"], other["num_replicas"]] == [2, 2], tails
    assert chief["chief"] and chief["is_chief"] and not other["chief"] and not other["is_chief"], tails
    assert chief["checksum"] == other["checksum"], f"the workers' {kind} weights differ\n{tails}"
    assert chief["steps"] == other["steps"] == chief["optimizer_steps"] == epochs * steps, tails
    loss = chief["history"]["loss"]
    assert chief["history"] == other["history"] and len(loss) == epochs and loss[-1] < loss[0], chief["history"]
    assert chief["history"]["val_loss"][-1] < chief["history"]["val_loss"][0], chief["history"]
    assert f"epoch {epochs}/{epochs}" in cluster.output(0) and f"epoch {epochs}/{epochs}" in cluster.output(1), tails

    # The chief kept the checkpoint of the last epoch; the other worker left nothing behind.
    assert latest_epoch(two_worker_run.checkpoints / kind) == epochs and chief["checkpoint"].endswith(f"ckpt-{epochs}")
    assert other["checkpoint"] is None
    assert not [p for p in os.listdir(cluster.scratch) if p.startswith("seqbeam-worker-checkpoint-")]

    # Two replicas of 8 examples == one device on batches of 16: the loss is scaled by the global
    # batch (for char_lm: by the unmasked tokens of the global batch), with sample weights; the
    # metrics are summed over both replicas.
    reference, reference_history = fit_reference(kind, epochs=epochs, steps=steps)
    assert_figures_close(train_figures(chief["history"]), reference_history, rtol=1e-4)
    for ours, theirs in zip(chief["weights"], reference.get_weights()):
        np.testing.assert_allclose(np.array(ours), theirs, rtol=1e-4, atol=1e-5)
    assert chief["evaluation"] == other["evaluation"], tails
    assert_figures_close(chief["evaluation"], evaluate_reference(reference, kind), rtol=1e-4)
    assert_figures_close(last_validation(chief["history"]), chief["evaluation"], rtol=1e-6)


def test_a_killed_cluster_restarted_with_the_same_command_resumes_to_the_same_step_count(tmp_path):
    epochs, steps = 4, 100  # epochs of about 0.5 s: time to kill between the first and the last
    checkpoints = tmp_path / "checkpoints"
    command = ("--models", "dense", "--checkpoint-dir", str(checkpoints), "--epochs", str(epochs),
               "--steps", str(steps))
    with Cluster(tmp_path, *command, name="killed") as first:
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while (latest_epoch(checkpoints / "dense") < 1 and time.monotonic() < deadline
               and all(p.poll() is None for p in first.processes)):
            time.sleep(0.05)
        first.kill()  # SIGKILL: no handler runs, as when a machine goes away
    done = latest_epoch(checkpoints / "dense")
    assert 1 <= done < epochs, f"expected a kill between epochs 1 and {epochs}, got {done}\n{first.tails()}"

    with Cluster(tmp_path, *command, name="resumed") as resumed:
        chief, other = (result["dense"] for result in resumed.wait())
    for result in (chief, other):
        assert result["initial_epoch"] == done and result["epochs_run"] == epochs - done, resumed.tails()
        assert result["steps"] == result["optimizer_steps"] == epochs * steps, resumed.tails()
        assert len(result["history"]["loss"]) == epochs - done
    assert chief["checksum"] == other["checksum"], resumed.tails()
    assert latest_epoch(checkpoints / "dense") == epochs
    assert "resumed from" in resumed.output(0) and "resumed from" in resumed.output(1)


if __name__ == "__main__":
    worker_main()
