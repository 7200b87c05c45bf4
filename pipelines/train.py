"""The training job: TFRecord shards + metadata.json -> trained model -> SavedModel.

    seqbeam train --config configs/<task>.yaml [--set train.epochs=3 ...] [--no-export]

Distribution comes from the environment: several local GPUs -> MirroredStrategy;
otherwise the default strategy. ``TF_CONFIG`` (multi-worker) is refused with a clear
message for now: Keras 3's ``fit`` is broken under MultiWorkerMirroredStrategy
(keras-team/keras#20585) and the custom distributed loop it needs is not written yet. ``BackupAndRestore`` keeps the training
state in ``<task>/train/backup``: a killed run, started again with the same command,
resumes from the last finished epoch. Outputs under ``<task>/train/``: ``logs/``
(TensorBoard), ``history.json``, ``metrics.json``; the export goes to ``<task>/model/<version>/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import posixpath
import time
from typing import Optional, Sequence

import keras
import tensorflow as tf

from seqbeam.models.inputs import load_metadata, make_dataset
from seqbeam.models.tasks import build_model, training_pairs
from seqbeam.pipelines.config import Config, ConfigError, join_path, load_config
from seqbeam.pipelines.preprocess import data_dir

_LOG = logging.getLogger(__name__)


def choose_strategy() -> tf.distribute.Strategy:
    """The distribution strategy the environment asks for (see the module docstring)."""
    if os.environ.get("TF_CONFIG"):
        # Keras 3's Model.fit does not run under MultiWorkerMirroredStrategy
        # (keras-team/keras#20585: the first batch is reduced as one nest, then per-replica
        # metric reductions fail); multi-worker training needs a custom distributed loop.
        raise NotImplementedError(
            "TF_CONFIG is set, but multi-worker training is not available yet: Keras 3 Model.fit "
            "fails under MultiWorkerMirroredStrategy (keras-team/keras#20585). Unset TF_CONFIG to "
            "train on this machine's devices."
        )
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def train_dir(config: Config) -> str:
    """Folder of the training job's own outputs."""
    return join_path(config.task_dir, "train")


def datasets(config: Config, metadata: dict, strategy: tf.distribute.Strategy) -> dict:
    """Train/valid/test datasets of (x, y[, weights]) with their steps per pass."""
    train = config.train
    global_batch = train.batch_size * strategy.num_replicas_in_sync
    pairs = training_pairs(config)
    out = {}
    for split in ("train", "valid", "test"):
        rows = metadata["rows"][split]
        if rows == 0:
            continue
        dataset = make_dataset(
            data_dir(config), split, batch_size=global_batch, shuffle=split == "train", seed=train.seed,
            shuffle_buffer=train.shuffle_buffer, repeat=True, metadata=metadata,
        ).map(pairs, num_parallel_calls=tf.data.AUTOTUNE)
        out[split] = (dataset, max(1, math.ceil(rows / global_batch)))
    return out


class _ProgressLog(keras.callbacks.Callback):
    """One log line per epoch with every metric, for scheduled jobs that only keep logs."""

    def __init__(self, epochs: int):
        super().__init__()
        self._epochs = epochs
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        figures = ", ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()))
        _LOG.info("epoch %d/%d (%.1fs): %s", epoch + 1, self._epochs, time.monotonic() - self._started, figures)


def run_config(config: Config, export: bool = True) -> dict:
    """Trains (and exports) the task's model; returns a summary with metrics and paths."""
    if config.train is None:
        raise ConfigError("the training job needs a 'train' section in the config")
    train = config.train
    metadata = load_metadata(data_dir(config))
    keras.utils.set_random_seed(train.seed)
    strategy = choose_strategy()
    _LOG.info("train %s: %s on %d replica(s), family %s", config.task.name, type(strategy).__name__,
              strategy.num_replicas_in_sync, train.model.family)
    data = datasets(config, metadata, strategy)
    with strategy.scope():
        model = build_model(config, metadata, data_dir(config))

    monitor = "val_loss" if "valid" in data else "loss"
    callbacks = [
        keras.callbacks.BackupAndRestore(join_path(train_dir(config), "backup")),
        keras.callbacks.TensorBoard(join_path(train_dir(config), "logs")),
        _ProgressLog(train.epochs),
    ]
    if train.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=train.early_stopping_patience,
                                                       restore_best_weights=True))
    train_ds, train_steps = data["train"]
    valid_ds, valid_steps = data.get("valid", (None, None))
    started = time.monotonic()
    history = model.fit(train_ds, steps_per_epoch=train_steps, epochs=train.epochs, validation_data=valid_ds,
                        validation_steps=valid_steps, callbacks=callbacks, verbose=0)
    seconds = time.monotonic() - started
    metrics = {split: model.evaluate(ds, steps=steps, verbose=0, return_dict=True)
               for split, (ds, steps) in data.items() if split != "train"}
    summary = {"task": config.task.name, "epochs_run": len(history.history.get("loss", [])),
               "steps": int(model.optimizer.iterations.numpy()), "seconds": round(seconds, 1),
               "examples_per_second": round(train_steps * len(history.history.get("loss", []))
                                            * train.batch_size * strategy.num_replicas_in_sync / max(seconds, 1e-9), 1),
               "metrics": metrics}
    _write_json(posixpath.join(train_dir(config), "history.json"), history.history)
    _write_json(posixpath.join(train_dir(config), "metrics.json"), summary)
    if export:
        from seqbeam.models.export import export_model

        summary["model_path"] = export_model(config, model, metadata, data_dir(config), metrics)
        _LOG.info("exported %s", summary["model_path"])
    summary["model"] = model
    return summary


def _write_json(path: str, payload: dict) -> None:
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(payload, indent=2, default=float) + "\n")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The training job's flags."""
    parser = argparse.ArgumentParser(prog="seqbeam train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="task YAML, e.g. configs/dates.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--no-export", dest="export", action="store_false", help="train only, export nothing")
    return parser.parse_args(argv)


def run(argv: Optional[Sequence[str]] = None) -> dict:
    """Entry point of ``seqbeam train``."""
    args = parse_args(argv)
    return run_config(load_config(args.config, args.overrides), export=args.export)
