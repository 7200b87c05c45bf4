"""The main job: preprocess -> train -> infer -> evaluate into one folder, then the report.

    seqbeam run --config configs/<task>.yaml [--force] [--stages infer,evaluate]
                [--set key=value ...] [Beam flags]

Every stage ends by writing its completion marker, ``<task>/_markers/<stage>.json`` (the
stage's config hash, outputs, summary and time), after all of its outputs. A stage is
skipped when its marker holds the hash of the config sections it reads
(:meth:`Config.stage_hash`), its outputs are still there and no stage before it ran in
this run; ``--force`` redoes every selected stage. Before a stage runs, its marker and
those of the stages after it are deleted, so a run killed half-way never leaves a marker
over partial outputs. A killed training run started again with the same config resumes
from its last finished epoch; with another config it starts afresh.

The run ends by printing where every output is and a one-screen summary, and by writing
``<task>/run_summary.json`` and the HTML report ``<task>/report.html``. The Beam stages
take the Beam flags (``--runner=DataflowRunner ...``); training runs in this process. For a
multi-worker cluster, run ``seqbeam train`` on every worker (the standalone jobs write no
markers), then ``seqbeam run --stages infer,evaluate``: inference serves the newest model.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import time
from typing import Callable, Optional, Sequence

from apache_beam.io.filesystems import FileSystems

from seqbeam.configs.schema import STAGES, Config, ConfigError, load_config
from seqbeam.pipelines import layout
from seqbeam.pipelines.options import job_parser
from seqbeam.storage import delete_paths, path_exists, read_json, write_json

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class StageOutcome:
    """What a stage did in a run, and what it left: the content of its marker."""

    stage: str
    status: str  # "ran" or "skipped"
    hash: str
    seconds: float
    outputs: dict
    summary: dict
    finished: str = ""

    def to_dict(self) -> dict:
        """Plain data, for the marker and run_summary.json."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------
# The stages: each runs its job and returns (outputs, summary) for the marker.


def _preprocess(config: Config, beam_args: Sequence[str], _: dict) -> tuple[dict, dict]:
    from seqbeam.pipelines import preprocess

    metadata = preprocess.run_config(config, beam_args, save_main_session=False)
    outputs = {"data": layout.data_dir(config), "metadata": layout.metadata_path(config),
               "rejected": layout.preprocess_rejected_dir(config)}
    return outputs, {"rows": metadata["rows"], "truncated": metadata["truncated"],
                     "vocab_sizes": metadata["vocab_sizes"]}


def _train(config: Config, beam_args: Sequence[str], _: dict) -> tuple[dict, dict]:
    from seqbeam.pipelines import train

    if config.train is None:
        raise ConfigError("the train stage needs a 'train' section in the config")
    summary = train.run_config(config)
    outputs = {"model": summary["model_path"], "history": layout.history_path(config),
               "logs": layout.tensorboard_dir(config)}
    keep = ("epochs_run", "steps", "seconds", "examples_per_second", "strategy", "replicas", "metrics")
    return outputs, {key: summary[key] for key in keep}


def _infer(config: Config, beam_args: Sequence[str], done: dict) -> tuple[dict, dict]:
    from seqbeam.pipelines import infer

    summary = infer.run_config(_with_model(config, done), beam_args, save_main_session=False)
    outputs = {"predictions": summary["predictions"], "rejected": summary["rejected"],
               "summary": layout.infer_summary_path(config), "model": summary["model_path"]}
    return outputs, {"rows": summary["rows"], "rows_per_second": summary["rows_per_second"],
                     "signature": summary["signature"]}


def _evaluate(config: Config, beam_args: Sequence[str], done: dict) -> tuple[dict, dict]:
    from seqbeam.pipelines import evaluate

    metrics = evaluate.run_config(_with_model(config, done), beam_args, save_main_session=False)
    outputs = {"metrics": layout.metrics_path(config)}
    if FileSystems.exists(layout.attention_path(config)):
        outputs["attention"] = layout.attention_path(config)
    return outputs, {"reference": metrics["reference"], "rows": metrics["rows"], **evaluate.headline(metrics)}


def _with_model(config: Config, done: dict) -> Config:
    """The config with ``infer.model_path`` set to the model this run trained (or found trained)."""
    trained = done.get("train")
    if config.infer.model_path or trained is None:
        return config
    return dataclasses.replace(config, infer=dataclasses.replace(config.infer, model_path=trained.outputs["model"]))


_RUNNERS: dict[str, Callable[[Config, Sequence[str], dict], tuple[dict, dict]]] = {
    "preprocess": _preprocess, "train": _train, "infer": _infer, "evaluate": _evaluate}
# The output whose absence makes a marker stale (deleted by hand, say).
_KEY_OUTPUT = {"preprocess": "metadata", "train": "model", "infer": "summary", "evaluate": "metrics"}


def completed(config: Config, stage: str) -> Optional[StageOutcome]:
    """The stage's marker when it still describes valid outputs for this config, else None."""
    marker = read_json(layout.marker_path(config, stage))
    if marker is None or marker.get("hash") != config.stage_hash(stage):
        return None
    key_output = (marker.get("outputs") or {}).get(_KEY_OUTPUT[stage])
    if not key_output or not path_exists(key_output):
        return None
    return StageOutcome(**{**marker, "status": "skipped"})


def _prepare(config: Config, stage: str, force: bool) -> None:
    """Deletes the stale markers; a training run that cannot resume starts from scratch."""
    delete_paths([layout.marker_path(config, s) for s in STAGES[STAGES.index(stage):]])
    started = read_json(layout.marker_path(config, stage, "started.json"))
    resumable = not force and started is not None and started.get("hash") == config.stage_hash(stage)
    if stage == "train" and not resumable:
        delete_paths([layout.train_dir(config)])
    write_json({"stage": stage, "hash": config.stage_hash(stage), "started": _now()},
               layout.marker_path(config, stage, "started.json"))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def parse_stages(text: str) -> tuple[str, ...]:
    """``--stages`` (comma-separated) in run order; an unknown name is an error naming it."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STAGES]
    if unknown or not names:
        raise ConfigError(f"--stages: unknown stage(s) {unknown or [text]}; choose from {','.join(STAGES)}")
    return tuple(stage for stage in STAGES if stage in names)


def run_config(config: Config, beam_args: Sequence[str] = (), force: bool = False,
               stages: Sequence[str] = STAGES, report: bool = True) -> dict:
    """Runs (or skips) the selected stages in order, writes the summary and the report; returns the summary."""
    if "train" in stages and config.train is None:
        raise ConfigError("the train stage needs a 'train' section in the config (or leave it out with --stages)")
    started, clock = _now(), time.monotonic()
    done: dict[str, StageOutcome] = {}
    upstream_ran = False
    for stage in stages:
        outcome = None if force or upstream_ran else completed(config, stage)
        if outcome is None:
            _LOG.info("run %s: %s", config.task.name, stage)
            _prepare(config, stage, force)
            stage_clock = time.monotonic()
            outputs, summary = _RUNNERS[stage](config, beam_args, done)
            outcome = StageOutcome(stage, "ran", config.stage_hash(stage), round(time.monotonic() - stage_clock, 2),
                                   outputs, summary, finished=_now())
            marker = outcome.to_dict()
            del marker["status"]
            write_json(marker, layout.marker_path(config, stage))
            upstream_ran = True
        else:
            _LOG.info("run %s: %s skipped (done for config %s on %s)", config.task.name, stage, outcome.hash,
                      outcome.finished)
        done[stage] = outcome
    summary = {
        "task": config.task.name,
        "task_dir": config.task_dir,
        "config_hash": config.hash,
        "started": started,
        "stages": [outcome.to_dict() for outcome in done.values()],
        "seconds": round(time.monotonic() - clock, 2),
    }
    if report:
        from seqbeam.pipelines.report import write_report

        summary["report"] = write_report(config.task_dir, config.to_yaml(), summary)
    write_json(summary, layout.run_summary_path(config))
    return summary


# ---------------------------------------------------------------------------------------
# The one-screen summary


def _figures(outcome: dict) -> str:
    summary, stage = outcome["summary"], outcome["stage"]
    if stage == "preprocess":
        rows = summary["rows"]
        return (f"{rows['in']:,} rows: {rows['train']:,} train / {rows['valid']:,} valid / {rows['test']:,} test, "
                f"{rows['rejected']:,} rejected, {summary['truncated']:,} truncated")
    if stage == "train":
        valid = summary["metrics"].get("valid") or summary["metrics"].get("test") or {}
        scores = ", ".join(f"val {k} {v:.4f}" for k, v in sorted(valid.items()))
        return f"{summary['epochs_run']} epochs, {summary['steps']:,} steps; {scores}"
    if stage == "infer":
        rows = summary["rows"]
        return (f"{rows['in']:,} rows in, {rows['out']:,} out, {rows['rejected']:,} rejected, "
                f"{rows['low_confidence']:,} low-confidence, {rows['truncated']:,} truncated")
    shown = {k: v for k, v in summary.items() if k not in ("reference", "rows", "split")}
    scores = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
    return f"{summary['split']} split: {scores}"


def format_summary(summary: dict) -> str:
    """What a run prints: each stage with its status, time, figures and outputs, then the report."""
    lines = [f"seqbeam run {summary['task']} -> {summary['task_dir']} (config {summary['config_hash']}, "
             f"{summary['seconds']:.1f}s)", ""]
    for outcome in summary["stages"]:
        status = "ran" if outcome["status"] == "ran" else "skipped (up to date)"
        lines.append(f"{outcome['stage']:<10} {status:<20} {outcome['seconds']:>7.1f}s  {_figures(outcome)}")
        for name, path in outcome["outputs"].items():
            lines.append(f"{'':<12}{name + ':':<13}{path}")
    if "report" in summary:
        lines += ["", f"report:     {summary['report']}"]
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    """Splits seqbeam's own flags from the Beam pipeline flags, which pass through untouched."""
    parser = job_parser("seqbeam run", __doc__, "train.epochs=3")
    parser.add_argument("--force", action="store_true", help="redo every selected stage, even if up to date")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated stages to run or skip (default: {','.join(STAGES)})")
    return parser.parse_known_args(argv)


def run(argv: Optional[Sequence[str]] = None) -> dict:
    """Entry point of ``seqbeam run``: prints the one-screen summary."""
    args, beam_args = parse_args(argv)
    stages = parse_stages(args.stages)
    config = load_config(args.config, args.overrides)
    summary = run_config(config, beam_args, force=args.force, stages=stages)
    print(format_summary(summary))
    return summary
