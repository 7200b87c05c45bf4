"""Multi-worker training: two worker processes on 127.0.0.1, in sync, checkpointed, resumable.

This file is also the workers' program: ``python tests/test_multiworker.py --worker ...``
trains the models below under MultiWorkerMirroredStrategy (TF_CONFIG from the
environment) and prints one ``RESULT {json}`` line per model, and, with ``--read-shards``,
one line with the ids its input pipeline read from each split of preprocessed TFRecords.
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

from seqbeam.pipelines import layout
from seqbeam.models.multiworker import evaluate_multi_worker, is_chief, tf_config_from_environment, train_multi_worker

FEATURES = 8
GLOBAL_BATCH = 16
LM_LENGTH, LM_VOCAB = 10, 12
# A guard against hung workers, not a speed check: `make test` runs another test file beside
# these on the same two cores, where a cluster run that takes 30 s alone can take minutes.
WORKER_TIMEOUT_S = 300


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


# The validation split: 44 rows, of which worker 0 holds the first 30 and worker 1 the other 14
# (as files of unequal sizes would split it). Per replica, batches of 8: worker 0 has 8, 8, 8, 6
# and worker 1 has 8, 6, then nothing for two steps; one device has 16, 16, 12.
VALID_SEED, VALID_ROWS, VALID_SPLIT = 1, 44, 30


def valid_parts(num_pipelines: int) -> list[range]:
    """The rows of the validation split that each input pipeline holds."""
    return [range(VALID_ROWS)] if num_pipelines == 1 else [range(VALID_SPLIT), range(VALID_SPLIT, VALID_ROWS)]


def valid_dataset_fn(kind: str):
    """One finite pass over this worker's part of the validation split, in batches of one replica."""

    def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
        rows = valid_parts(context.num_input_pipelines)[context.input_pipeline_id]
        part = tuple(array[rows.start:rows.stop] for array in examples(kind, rows=VALID_ROWS, seed=VALID_SEED))
        return tf.data.Dataset.from_tensor_slices(part).batch(context.get_per_replica_batch_size(GLOBAL_BATCH))

    return make


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
    parser.add_argument("--read-shards", default="", help="comma-separated preprocessed data folders to read")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tf.config.threading.set_intra_op_parallelism_threads(1)  # two workers share two cores
    tf.config.threading.set_inter_op_parallelism_threads(1)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TensorFlow op
    for data_dir in filter(None, args.read_shards.split(",")):
        print("RESULT " + json.dumps({"kind": f"shards:{data_dir}", "ids": ids_read(strategy, data_dir)}), flush=True)
    for kind in args.models.split(","):
        result = train_multi_worker(
            lambda: build_model(kind), dataset_fn(kind), strategy=strategy, epochs=args.epochs,
            steps_per_epoch=args.steps, checkpoint_dir=os.path.join(args.checkpoint_dir, kind),
            validation=valid_dataset_fn(kind), global_batch_size=GLOBAL_BATCH)
        model = result.pop("model")
        evaluation = evaluate_multi_worker(model, valid_dataset_fn(kind), strategy=strategy)
        report = {**result, "kind": kind, "evaluation": evaluation,
                  "optimizer_steps": int(model.optimizer.iterations.numpy()),
                  "checksum": checksum(model), "weights": [w.tolist() for w in model.get_weights()],
                  "is_chief": is_chief(tf_config_from_environment())}
        print("RESULT " + json.dumps(report), flush=True)


def ids_read(strategy: tf.distribute.Strategy, data_dir: str) -> dict[str, list[str]]:
    """The ids this worker's input pipeline yields from each split: one finite pass, as evaluation reads."""
    from seqbeam.models.inputs import load_metadata, make_dataset

    ids = {}
    for split, rows in load_metadata(data_dir)["rows"].items():
        if split not in ("train", "valid", "test") or not rows:
            continue
        distributed = strategy.distribute_datasets_from_function(lambda context, split=split: make_dataset(
            data_dir, split, batch_size=context.get_per_replica_batch_size(GLOBAL_BATCH), input_context=context))
        ids[split] = [value.decode() for batch in distributed
                      for local in strategy.experimental_local_results(batch["id"]) for value in local.numpy()]
    return ids


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


def evaluate_reference(model: keras.Model, kind: str, num_pipelines: int) -> dict:
    """``Model.evaluate`` on one device, over the global batches that the replicas see together."""
    arrays = examples(kind, rows=VALID_ROWS, seed=VALID_SEED)
    per_replica = GLOBAL_BATCH // num_pipelines
    parts = valid_parts(num_pipelines)
    steps = max(-(-len(part) // per_replica) for part in parts)
    global_batches = []
    for step in range(steps):
        rows = np.concatenate([np.array(part[step * per_replica:(step + 1) * per_replica], dtype=int)
                               for part in parts])
        global_batches.append(tuple(array[rows] for array in arrays))
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(global_batches),
        output_signature=tuple(tf.TensorSpec([None, *array.shape[1:]], tf.as_dtype(array.dtype)) for array in arrays))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps))  # a known length: no Keras warning
    return model.evaluate(dataset, verbose=0, return_dict=True)


def hand_evaluation(weights: list, kind: str = "dense") -> dict:
    """The dense model's validation figures computed here, over each of the VALID_ROWS examples once."""
    model = build_model(kind)
    model.set_weights([np.array(w, dtype="float32") for w in weights])
    x, y, sample_weight = examples(kind, rows=VALID_ROWS, seed=VALID_SEED)
    p = np.clip(model.predict(x, verbose=0).astype("float64"), 1e-7, 1 - 1e-7)
    cross_entropy = -(y * np.log(p) + (1 - y) * np.log(1 - p))[:, 0]
    return {"loss": float(np.mean(sample_weight * cross_entropy)),  # "sum_over_batch_size" of weighted values
            "accuracy": float(np.mean((p > 0.5) == (y > 0.5))),
            "weighted_mse": float(np.sum(sample_weight * (y - p)[:, 0] ** 2) / np.sum(sample_weight))}


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
                                validation=valid_dataset_fn(kind))
    model = result["model"]
    assert_figures_close(train_figures(result["history"]), reference_history, rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    evaluation = evaluate_multi_worker(model, valid_dataset_fn(kind), strategy=strategy)
    assert_figures_close(evaluation, evaluate_reference(reference, kind, num_pipelines=1), rtol=1e-5)
    if kind == "dense":  # 44 rows in batches of 16: the partial last batch counts its 12 examples once
        assert_figures_close(evaluation, hand_evaluation(model.get_weights()), rtol=1e-5)
    # Validation reads the same batches after every epoch: the last one is an evaluation of the final weights.
    assert_figures_close(last_validation(result["history"]), evaluation, rtol=1e-6)
    assert result["steps"] == 8 and latest_epoch(tmp_path / "ckpt") == 2

    # The same command again finds every epoch done: it restores the weights and trains nothing.
    again = train_multi_worker(lambda: build_model(kind), dataset_fn(kind), strategy=strategy, epochs=2,
                               steps_per_epoch=4, checkpoint_dir=str(tmp_path / "ckpt"))
    assert (again["initial_epoch"], again["epochs_run"], again["steps"], again["history"]) == (2, 0, 8, {})
    assert checksum(again["model"]) == checksum(model)


def squared_error(y_true, y_pred):
    """A loss function of one's own, which (unlike Keras' mean_squared_error) does not align ranks itself."""
    return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


@pytest.mark.parametrize("loss", ["binary_crossentropy", squared_error])
def test_a_loss_function_is_reduced_as_model_fit_reduces_it(tmp_path, loss):
    # A name or function, with labels [batch] for outputs [batch, 1]: compile aligns the two
    # before calling the function, and so must the loop (binary_crossentropy would raise on
    # the shapes, squared_error silently broadcast to [batch, batch]).
    def build() -> keras.Model:
        inputs = keras.Input(shape=(FEATURES,))
        outputs = keras.layers.Dense(1, activation="sigmoid",
                                     kernel_initializer=keras.initializers.GlorotUniform(seed=2))(inputs)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss=loss)
        return model

    def vector_labels(context=None) -> tf.data.Dataset:
        x, y, sample_weight = examples("dense")
        return tf.data.Dataset.from_tensor_slices((x, y[:, 0], sample_weight)).repeat().batch(GLOBAL_BATCH)

    reference = build()
    history = reference.fit(vector_labels(), epochs=2, steps_per_epoch=3, verbose=0, shuffle=False).history
    result = train_multi_worker(build, vector_labels, strategy=tf.distribute.get_strategy(), epochs=2,
                                steps_per_epoch=3, checkpoint_dir=str(tmp_path / "ckpt"))
    assert_figures_close(result["history"], history, rtol=1e-5)
    for ours, theirs in zip(result["model"].get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_evaluation_refuses_a_repeated_dataset(tmp_path):
    model = build_model("dense")
    with pytest.raises(ValueError, match="one finite pass"):
        evaluate_multi_worker(model, dataset_fn("dense"), strategy=tf.distribute.get_strategy())


def test_a_dataset_too_short_for_the_schedule_fails_before_training(tmp_path):
    def finite(context):  # 256 rows: 16 batches, fewer than the 2 x 10 steps asked for
        return tf.data.Dataset.from_tensor_slices(examples("dense")).batch(GLOBAL_BATCH)

    with pytest.raises(ValueError, match="holds 16 batches but 20 are needed"):
        train_multi_worker(lambda: build_model("dense"), finite, strategy=tf.distribute.get_strategy(), epochs=2,
                           steps_per_epoch=10, checkpoint_dir=str(tmp_path / "ckpt"))


def preprocessed_dates(out_dir, num_shards: int) -> str:
    """A preprocessed dates corpus of 300 generated rows in ``num_shards`` files per split; its data folder."""
    from seqbeam.pipelines import preprocess
    from seqbeam.configs.schema import config_from_dict

    config = config_from_dict({
        "task": {"name": "dates", "kind": "seq2seq"},
        "data": {"format": "generated", "generator": {"name": "dates", "num_rows": 300, "seed": 5}},
        "preprocess": {"tokenizer": {"level": "char"}, "max_length": 40, "max_target_length": 12,
                       "num_shards": num_shards, "batch_size": 16},
        "output_dir": str(out_dir),
    })
    preprocess.run_config(config, save_main_session=False)
    return layout.data_dir(config)


@pytest.fixture(scope="module")
def two_worker_run(tmp_path_factory) -> SimpleNamespace:
    """One cluster run reading two preprocessed corpora and training both models, shared by the
    in-sync tests (start-up is the slow part)."""
    tmp_path = tmp_path_factory.mktemp("in_sync")
    run = SimpleNamespace(epochs=3, steps=8, checkpoints=tmp_path / "checkpoints",
                          many_files=preprocessed_dates(tmp_path / "many", num_shards=3),
                          one_file=preprocessed_dates(tmp_path / "one", num_shards=1))
    with Cluster(tmp_path, "--models", "dense,char_lm", "--checkpoint-dir", str(run.checkpoints),
                 "--epochs", str(run.epochs), "--steps", str(run.steps),
                 "--read-shards", f"{run.many_files},{run.one_file}") as run.cluster:
        run.results = run.cluster.wait()
    return run


def ids_by_file(data_dir: str, split: str) -> dict[str, set[str]]:
    """The ids of each shard file of a split, read here file by file."""
    from seqbeam.models.inputs import load_metadata, shard_paths

    by_file = {}
    for path in shard_paths(data_dir, load_metadata(data_dir), split):
        records = tf.data.TFRecordDataset(path, compression_type="GZIP")
        by_file[path] = {tf.train.Example.FromString(r.numpy()).features.feature["id"].bytes_list.value[0].decode()
                         for r in records}
    return by_file


@pytest.mark.slow
def test_each_worker_reads_only_its_own_shard_files(two_worker_run):
    data_dir = two_worker_run.many_files
    read = [result[f"shards:{data_dir}"]["ids"] for result in two_worker_run.results]
    for split in ("train", "valid", "test"):
        by_file = {path: ids for path, ids in ids_by_file(data_dir, split).items() if ids}
        assert len(by_file) >= 2, f"the {split} split needs a non-empty file per worker: {by_file.keys()}"
        everything = set().union(*by_file.values())
        mine, theirs = (set(ids[split]) for ids in read)
        assert len(read[0][split]) == len(mine) and len(read[1][split]) == len(theirs)  # no id twice on a worker
        assert not mine & theirs and mine | theirs == everything, split
        # Whole files to each worker, never part of one: the other worker did not open them.
        for ids in (mine, theirs):
            files = [path for path, in_file in by_file.items() if in_file & ids]
            assert set().union(*(by_file[path] for path in files)) == ids and files, (split, files)


@pytest.mark.slow
def test_with_fewer_shard_files_than_workers_each_record_is_still_read_once(two_worker_run):
    data_dir = two_worker_run.one_file
    read = [result[f"shards:{data_dir}"]["ids"] for result in two_worker_run.results]
    for split in ("train", "valid", "test"):
        (everything,) = (ids for ids in ids_by_file(data_dir, split).values())
        mine, theirs = (set(ids[split]) for ids in read)
        assert len(read[0][split]) + len(read[1][split]) == len(everything)
        assert not mine & theirs and mine | theirs == everything and mine and theirs, split
    assert "preprocess.num_shards >= 2" in two_worker_run.cluster.output(0)


@pytest.mark.slow
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
    # Validation and evaluation: the 44 examples once each, though worker 1 ran out two steps early.
    assert chief["evaluation"] == other["evaluation"], tails
    assert_figures_close(chief["evaluation"], evaluate_reference(reference, kind, num_pipelines=2), rtol=1e-4)
    assert_figures_close(last_validation(chief["history"]), chief["evaluation"], rtol=1e-6)
    if kind == "dense":
        assert_figures_close(chief["evaluation"], hand_evaluation(chief["weights"]), rtol=1e-5)


@pytest.mark.slow
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
