"""The training job: TFRecord shards + metadata.json -> trained model -> SavedModel.

    seqbeam train --config configs/<task>.yaml [--set train.epochs=3 ...] [--no-export]

Distribution comes from the environment: ``TF_CONFIG`` set -> MultiWorkerMirroredStrategy
(one process per worker, the same command everywhere); several local GPUs ->
MirroredStrategy; otherwise the default strategy. Keras 3's ``fit`` does not run under
MultiWorkerMirroredStrategy (keras-team/keras#20585), so multi-worker jobs train with the
custom distributed loop of :mod:`seqbeam.models.multiworker` (epoch checkpoints in
``<task>/train/checkpoints``, which must be storage every worker reads, e.g. gs://; no
early stopping or TensorBoard there), each worker reading its own shard files; the others
use ``fit``. Validation and the final metrics are one pass over the valid/test split on
either path: every example counted once. ``BackupAndRestore`` keeps the training
state in ``<task>/train/backup`` (after every epoch, or, when epochs are shorter than ten
backups, every few epochs): a killed run, started again with the same command, resumes
from its last backup. Outputs under ``<task>/train/``: ``logs/``
(TensorBoard), ``history.json``, ``metrics.json``; the export goes to ``<task>/model/<version>/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import posixpath
import shutil
import tempfile
import time
from typing import Optional, Sequence

import keras
import tensorflow as tf

from seqbeam.models.inputs import load_metadata, make_dataset
from seqbeam.models.tasks import build_model, training_pairs
from seqbeam.configs.schema import Config, ConfigError, load_config
from seqbeam.pipelines import layout
from seqbeam.pipelines.options import job_parser

_LOG = logging.getLogger(__name__)


def choose_strategy() -> tf.distribute.Strategy:
    """The distribution strategy the environment asks for (see the module docstring).

    Call it before any other TensorFlow work: a multi-worker strategy configures the
    collective ops of the process at start-up.
    """
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def steps_per_epoch(metadata: dict, global_batch: int) -> int:
    """Global steps of one training epoch: every training row about once."""
    return max(1, math.ceil(metadata["rows"]["train"] / global_batch))


def split_dataset(config: Config, metadata: dict, split: str, batch_size: int,
                  input_context: Optional[tf.distribute.InputContext] = None) -> tf.data.Dataset:
    """(x, y[, weights]) batches of a split: training shuffled and repeated, the others one finite pass.

    A whole split (no ``input_context``) states its batch count from metadata.json: Keras
    then knows the pass's length (no "ran out of data" warning) and a split holding other
    than its recorded rows fails instead of being evaluated.
    """
    train = config.train
    training = split == "train"
    # Length-sorted batches on one machine only: the multi-worker loop keeps fixed shapes.
    length_window = train.length_window if input_context is None else 0
    dataset = make_dataset(
        layout.data_dir(config), split, batch_size=batch_size, shuffle=training, seed=train.seed,
        shuffle_buffer=train.shuffle_buffer, repeat=training, metadata=metadata, input_context=input_context,
        length_window=length_window,
    ).map(training_pairs(config), num_parallel_calls=tf.data.AUTOTUNE)
    if not training and input_context is None:
        batches = math.ceil(metadata["rows"][split] / batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset


def datasets(config: Config, metadata: dict, strategy: tf.distribute.Strategy) -> dict:
    """Datasets of the splits that hold rows, in global batches (see :func:`split_dataset`)."""
    global_batch = config.train.batch_size * strategy.num_replicas_in_sync
    return {split: split_dataset(config, metadata, split, global_batch)
            for split in ("train", "valid", "test") if metadata["rows"][split]}


class _ProgressLog(keras.callbacks.Callback):
    """Epoch log lines with every metric, for scheduled jobs that only keep logs.

    Every epoch of a run of fewer than 40; of a longer one the first, the last and every
    ``epochs // 20``-th, about 21 lines (the emoji task's 300 short epochs: 21 lines, not 300).
    """

    _MAX_LINES = 20

    def __init__(self, epochs: int):
        super().__init__()
        self._epochs = epochs
        self._every = max(1, epochs // self._MAX_LINES)
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self._every and done not in (1, self._epochs):
            return
        figures = ", ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()))
        _LOG.info("epoch %d/%d (%.1fs): %s", epoch + 1, self._epochs, time.monotonic() - self._started, figures)


class _ThrottledBackup(keras.callbacks.Callback):
    """Keras ``BackupAndRestore`` run after an epoch only once ten times the last backup's
    duration has passed since it: at most ~10 % of the time goes to backups.

    An epoch of a small corpus can take less time than writing the model's weights (a frozen
    400,000-word embedding is 80 MB); a larger corpus still gets a backup after every epoch.
    The first epoch is always backed up. A killed run resumes from the last
    backup, to the same step count, having lost at most ten backups' time of training. The
    wrapped callback is driven through its public hooks only.
    """

    _BUDGET = 10  # seconds between backups, per second of backup

    def __init__(self, backup_dir: str):
        super().__init__()
        self._backup = keras.callbacks.BackupAndRestore(backup_dir)
        self._next_backup = 0.0

    def set_model(self, model):
        super().set_model(model)
        self._backup.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self._backup.set_params(params)

    def on_train_begin(self, logs=None):
        self._backup.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        started = time.monotonic()
        if started >= self._next_backup:
            self._backup.on_epoch_end(epoch, logs)
            ended = time.monotonic()
            self._next_backup = ended + self._BUDGET * (ended - started)

    def on_train_end(self, logs=None):
        self._backup.on_train_end(logs)


def run_config(config: Config, export: bool = True) -> dict:
    """Trains (and exports) the task's model; returns a summary with metrics and paths."""
    if config.train is None:
        raise ConfigError("the training job needs a 'train' section in the config")
    strategy = choose_strategy()
    metadata = load_metadata(layout.data_dir(config))
    keras.utils.set_random_seed(config.train.seed)
    _LOG.info("train %s: %s on %d replica(s), family %s", config.task.name, type(strategy).__name__,
              strategy.num_replicas_in_sync, config.train.model.family)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        model, history, metrics, summary = _train_multi_worker(config, metadata, strategy)
    else:
        model, history, metrics, summary = _train_with_fit(config, metadata, strategy)
    from seqbeam.models.multiworker import is_chief, tf_config_from_environment

    chief = is_chief(tf_config_from_environment())
    if chief:
        _write_json(layout.history_path(config), history)
        _write_json(layout.train_metrics_path(config), summary)
    if export:
        summary["model_path"] = _export(config, model, metadata, metrics, chief)
    summary["model"] = model
    return summary


def _train_with_fit(config: Config, metadata: dict, strategy: tf.distribute.Strategy) -> tuple:
    """Keras ``fit`` with BackupAndRestore, early stopping and TensorBoard (one machine)."""
    train = config.train
    data = datasets(config, metadata, strategy)
    with strategy.scope():
        model = build_model(config, metadata, layout.data_dir(config))
    monitor = "val_loss" if "valid" in data else "loss"
    callbacks = [
        _ThrottledBackup(layout.backup_dir(config)),
        keras.callbacks.TensorBoard(layout.tensorboard_dir(config)),
        _ProgressLog(train.epochs),
    ]
    if train.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=train.early_stopping_patience,
                                                       restore_best_weights=True))
    train_steps = steps_per_epoch(metadata, train.batch_size * strategy.num_replicas_in_sync)
    started = time.monotonic()
    # Finite validation data and no validation_steps: Keras reads all of it, each example once.
    # shuffle=False: the tf.data pipeline shuffles (Keras only warns that it cannot).
    history = model.fit(data["train"], steps_per_epoch=train_steps, epochs=train.epochs, shuffle=False,
                        validation_data=data.get("valid"), callbacks=callbacks, verbose=0).history
    seconds = time.monotonic() - started
    metrics = {split: model.evaluate(dataset, verbose=0, return_dict=True)
               for split, dataset in data.items() if split != "train"}
    summary = _summary(config, strategy, history, metrics, int(model.optimizer.iterations.numpy()),
                       train_steps, seconds)
    return model, history, metrics, summary


def _train_multi_worker(config: Config, metadata: dict, strategy: tf.distribute.Strategy) -> tuple:
    """The custom distributed loop: every worker reads its own shard files of each split."""
    from seqbeam.models.multiworker import evaluate_multi_worker, train_multi_worker

    train = config.train
    global_batch = train.batch_size * strategy.num_replicas_in_sync

    def dataset_fn(split: str):
        def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return split_dataset(config, metadata, split, context.get_per_replica_batch_size(global_batch),
                                 input_context=context)
        return make

    splits = [split for split in ("valid", "test") if metadata["rows"][split]]
    train_steps = steps_per_epoch(metadata, global_batch)
    result = train_multi_worker(
        lambda: build_model(config, metadata, layout.data_dir(config)), dataset_fn("train"), strategy=strategy,
        epochs=train.epochs, steps_per_epoch=train_steps,
        validation=dataset_fn("valid") if "valid" in splits else None,
        global_batch_size=global_batch, checkpoint_dir=layout.checkpoint_dir(config),
        log=_LOG,
    )
    model = result["model"]
    metrics = {split: evaluate_multi_worker(model, dataset_fn(split), strategy=strategy) for split in splits}
    summary = _summary(config, strategy, result["history"], metrics, result["steps"], train_steps,
                       result["seconds"])
    return model, result["history"], metrics, summary


def _summary(config: Config, strategy, history: dict, metrics: dict, optimizer_steps: int,
             steps_per_epoch: int, seconds: float) -> dict:
    epochs_run = len(history.get("loss", []))
    examples = steps_per_epoch * epochs_run * config.train.batch_size * strategy.num_replicas_in_sync
    return {"task": config.task.name, "strategy": type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync, "epochs_run": epochs_run, "steps": optimizer_steps,
            "seconds": round(seconds, 1), "examples_per_second": round(examples / max(seconds, 1e-9), 1),
            "metrics": metrics}


def _export(config: Config, model: keras.Model, metadata: dict, metrics: dict, chief: bool) -> str:
    """Exports on the chief; other workers export to a temporary folder they delete.

    Under a multi-worker strategy every worker takes part in saving, but only the chief's
    SavedModel may land in the task folder.
    """
    from seqbeam.models.export import export_model

    if chief:
        path = export_model(config, model, metadata, layout.data_dir(config), metrics, model_root=layout.model_root(config))
        _LOG.info("exported %s", path)
        return path
    scratch = tempfile.mkdtemp(prefix="seqbeam-export-")
    try:
        export_model(config, model, metadata, layout.data_dir(config), metrics, model_root=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ""


def _write_json(path: str, payload: dict) -> None:
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(payload, indent=2, default=float) + "\n")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The training job's flags."""
    parser = job_parser("seqbeam train", __doc__, "train.epochs=3")
    parser.add_argument("--no-export", dest="export", action="store_false", help="train only, export nothing")
    return parser.parse_args(argv)


def run(argv: Optional[Sequence[str]] = None) -> dict:
    """Entry point of ``seqbeam train``."""
    args = parse_args(argv)
    return run_config(load_config(args.config, args.overrides), export=args.export)
