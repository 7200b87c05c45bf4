"""Where every output of a task lives: the one module that names the paths under ``<task>/``.

::

    <output_dir>/<task>/
      data/                      preprocess: {train,valid,test}-*.tfrecord.gz, vocab/<name>.txt,
                                 rejected/rejected-*.parquet, config.yaml, metadata.json (last)
      train/                     train: history.json, metrics.json, logs/ (TensorBoard), backup/,
                                 checkpoints/
      model/<version>/           train: SavedModel + model_card.json (last)
      predictions/               infer: predictions-*.parquet
      rejected/                  infer: rejected-*.parquet
      infer_summary.json         infer: its accounting (last)
      eval/                      evaluate: metrics.json, attention.json
      _markers/                  run: <stage>.json, <stage>.started.json
      run_summary.json, report.html

Every function takes the task's config, or its folder (``<output_dir>/<task>``: the report
describes a run from its folder alone). Local paths and ``gs://`` URLs alike: every path is
joined with ``/``.
"""

from __future__ import annotations

from typing import Union

from seqbeam.configs.schema import Config
from seqbeam.storage import join_path

# A task's config, or the folder holding its outputs.
Task = Union[Config, str]

METADATA = "metadata.json"
REJECTED = "rejected"


def task_dir(config: Task) -> str:
    """Folder holding every output of the task."""
    return config if isinstance(config, str) else config.task_dir


def data_dir(config: Task) -> str:
    """Folder of the preprocessing outputs: shards, vocabularies, rejected rows, metadata.json."""
    return join_path(task_dir(config), "data")


def metadata_path(config: Task) -> str:
    """The preprocessing job's summary, written last: its presence marks a finished run."""
    return join_path(data_dir(config), METADATA)


def vocabulary_names(config: Config) -> tuple[str, ...]:
    """Names of the task's vocabularies, also their file names under ``data/vocab/``."""
    return ("source", "target") if config.task.kind == "seq2seq" else ("tokens",)


def vocabulary_path(config: Task, name: str) -> str:
    """The file of vocabulary ``name`` (one of :func:`vocabulary_names`)."""
    return join_path(data_dir(config), "vocab", f"{name}.txt")


def preprocess_rejected_dir(config: Task) -> str:
    """Folder of the rows the preprocessing job rejected."""
    return join_path(data_dir(config), REJECTED)


def resolved_config_path(config: Task) -> str:
    """The resolved config the preprocessing job ran with."""
    return join_path(data_dir(config), "config.yaml")


def train_dir(config: Task) -> str:
    """Folder of the training job's history, TensorBoard logs, backup and checkpoints."""
    return join_path(task_dir(config), "train")


def history_path(config: Task) -> str:
    """Per-epoch losses and metrics of the last training run."""
    return join_path(train_dir(config), "history.json")


def train_metrics_path(config: Task) -> str:
    """The training job's summary: strategy, steps, speed and the final metrics."""
    return join_path(train_dir(config), "metrics.json")


def tensorboard_dir(config: Task) -> str:
    """TensorBoard event files of the training job."""
    return join_path(train_dir(config), "logs")


def backup_dir(config: Task) -> str:
    """Keras ``BackupAndRestore`` state: a killed single-worker run resumes from it."""
    return join_path(train_dir(config), "backup")


def checkpoint_dir(config: Task) -> str:
    """Epoch checkpoints of the multi-worker loop (storage every worker reads, e.g. gs://)."""
    return join_path(train_dir(config), "checkpoints")


def model_root(config: Task) -> str:
    """Folder of the exported versions, ``model/<version>/``."""
    return join_path(task_dir(config), "model")


def predictions_dir(config: Task) -> str:
    """Folder of the prediction Parquet files."""
    return join_path(task_dir(config), "predictions")


def infer_rejected_dir(config: Task) -> str:
    """Folder of the rows the inference job rejected."""
    return join_path(task_dir(config), REJECTED)


def infer_summary_path(config: Task) -> str:
    """The inference job's counts, written last: its presence marks a finished run."""
    return join_path(task_dir(config), "infer_summary.json")


def eval_dir(config: Task) -> str:
    """Folder of the evaluation job's outputs."""
    return join_path(task_dir(config), "eval")


def metrics_path(config: Task) -> str:
    """The evaluation metrics."""
    return join_path(eval_dir(config), "metrics.json")


def attention_path(config: Task) -> str:
    """Attention weights of a few inputs (seq2seq models with attention), for the report."""
    return join_path(eval_dir(config), "attention.json")


def markers_dir(config: Task) -> str:
    """Folder of the stages' completion markers."""
    return join_path(task_dir(config), "_markers")


def marker_path(config: Task, stage: str, suffix: str = "json") -> str:
    """The completion marker of ``stage`` (``suffix="started.json"``: the record of its last start)."""
    return join_path(markers_dir(config), f"{stage}.{suffix}")


def report_path(config: Task) -> str:
    """The run's HTML report."""
    return join_path(task_dir(config), "report.html")


def run_summary_path(config: Task) -> str:
    """The run's summary, as JSON."""
    return join_path(task_dir(config), "run_summary.json")
