#!/usr/bin/env python
"""Benchmark of the training job: throughput, the date normalizer end to end, emoji k-fold, names.

Four sections, each run with the real jobs (``seqbeam.pipelines.preprocess.run_config``,
``seqbeam.pipelines.train.run_config``, ``seqbeam.models.export.export_model``) on configs
loaded from ``configs/*.yaml`` with ``--set``-style overrides (``output_dir`` in the work
dir, epochs, paths), on Beam's local runner, in this one process:

1. ``throughput``: training examples/s per task (emoji V1, emoji V2, reber, names, dates,
   translate) on the shipped demo corpora (``data/``) and the generated ones (dates, Reber),
   ``--throughput-epochs`` epochs each, early stopping off, no export. ``examples/s`` is the
   training summary's ``examples_per_second`` (steps x batch size / ``fit`` seconds, first
   epoch's tracing and every epoch's validation included); ``ex/s after epoch 1`` is the
   same count over the epochs after the first (from the job's per-epoch log), closer to the
   steady state. Then the same training with 2 workers on localhost (two ``seqbeam train``
   processes with ``TF_CONFIG``, MultiWorkerMirroredStrategy, the custom distributed loop;
   ``--no-two-workers`` skips it): its examples/s from the chief's ``metrics.json``. On a
   2-core machine both workers share the same cores: the figure shows the loop's overhead,
   not a speed-up.
2. ``dates``: the date normalizer end to end: generate + preprocess ``--dates-rows`` dates
   (``configs/dates.yaml`` settings: seed, shards, noise rate, model, early stopping), train
   ``--dates-epochs`` epochs, export, regenerate the held-out test split's raw strings from
   the generator seed (as ``tests/test_dates_model.py`` does) and serve them through the
   SavedModel. Exact match per input format (every format of
   ``transforms.date_generator.FORMATS``), clean and noisy apart, and overall, with the wall
   time of every stage. Target: >= 99.9 % exact match on clean inputs.
3. ``kfold``: Emojifier V1 and V2, ``--folds``-fold cross-validation on the EMOJISET train
   file (``--emoji-csv``: ``sentence,label[,extra columns]``, no header). Each fold's train
   part is written as a ``sentence,label`` CSV and preprocessed with all its rows in the
   train split, trained ``--emoji-epochs`` epochs (fixed: no validation split, no early
   stopping) from scratch (no pretrained vectors: GloVe is not available here) and
   exported; the held-out fold's raw sentences are served through the SavedModel.
   Reference (original course, GloVe 50d): V1 85.7 % test accuracy, V2 80-95 %.
4. ``names``: the char LM trained on ``--names-file`` (``configs/names.yaml``, ``data.path``
   overridden), exported, then ``--samples`` names sampled through the SavedModel from empty
   prompts: share of novel names (not in the training file, case-insensitive), mean length
   vs the training list's, 20 examples.

    python benchmarks/train.py                     # everything, full size (tens of minutes on 2 cores)
    python benchmarks/train.py --quick             # tiny rows/epochs: a few minutes, checks it all runs
    python benchmarks/train.py --sections dates --dates-rows 100000 --dates-epochs 20 --json dates.json
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Optional, Sequence

from reporting import mark as _mark, md_table as _md_table, text_table as _text_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
SHARED_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))

SECTIONS = ("throughput", "dates", "kfold", "names")

# label, config file, overrides (on top of output_dir / epochs / early stopping / paths)
THROUGHPUT_TASKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("emoji V1", "emoji.yaml", ("train.model.family=emojifier_v1",)),
    ("emoji V2", "emoji.yaml", ("train.model.family=emojifier_v2",)),
    ("reber", "reber.yaml", ()),
    ("names", "names.yaml", ()),
    ("dates", "dates.yaml", ()),
    ("translate", "translate.yaml", ()),
)

# Targets and references.
TARGET_DATES_CLEAN = 0.999
REFERENCE_EMOJI = {"emojifier_v1": "85.7 % test (course, GloVe 50d)",
                   "emojifier_v2": "80-95 % test (course, GloVe 50d)"}
EMOJI_MODELS = (("V1", "emojifier_v1"), ("V2", "emojifier_v2"))

# Defaults: full run / --quick.
DEFAULTS = {
    "throughput_epochs": (3, 2),
    "throughput_generated_rows": (None, 2_000),  # None: the config's num_rows
    "dates_rows": (50_000, 3_000),
    "dates_epochs": (10, 1),
    "folds": (5, 2),
    "emoji_epochs": (None, 3),  # None: configs/emoji.yaml's epochs
    "names_epochs": (None, 2),  # None: configs/names.yaml's epochs
    "samples": (200, 200),
}
SERVE_BATCH = 1024
NAME_EXAMPLES = 20
TWO_WORKERS = "2 workers: two processes on this machine sharing its cores (MultiWorkerMirroredStrategy)"


# --------------------------------------------------------------------------- helpers


def _q(value: Any) -> str:
    """A value for a ``key=value`` override (JSON is YAML: paths stay strings, whatever they hold)."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def load_task(config_file: str, overrides: Sequence[str]):
    """configs/<file> with the overrides; a relative data.path is resolved against the repository."""
    from seqbeam.pipelines.config import load_config

    path = os.path.join(CONFIGS, config_file)
    config = load_config(path, list(overrides))
    if config.data.path and "://" not in config.data.path and not os.path.isabs(config.data.path):
        config = load_config(path, [*overrides, f"data.path={_q(os.path.join(ROOT, config.data.path))}"])
    return config


class EpochLog(logging.Handler):
    """Collects the training job's per-epoch seconds from its progress log lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith("epoch %d/%d") and record.args:
            self.seconds.append(float(record.args[2]))


class _Stopwatch:
    def __init__(self, stages: dict, name: str):
        self._stages, self._name = stages, name

    def __enter__(self):
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self._stages[self._name] = time.perf_counter() - self._started


def _forget_models() -> None:
    """Frees the Keras/TF state of the previous run (one process runs them all)."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def preprocess_and_train(config, export: bool) -> dict:
    """Preprocess, train and (optionally) export one config; stage seconds and the summary."""
    from seqbeam.models.export import export_model
    from seqbeam.models.inputs import load_metadata
    from seqbeam.pipelines import preprocess, train

    stages: dict[str, float] = {}
    with _Stopwatch(stages, "preprocess"):
        preprocess.run_config(config, save_main_session=False)
    metadata = load_metadata(preprocess.data_dir(config))
    epoch_log = EpochLog()
    logger = logging.getLogger("seqbeam")
    logger.addHandler(epoch_log)
    try:
        with _Stopwatch(stages, "train"):
            summary = train.run_config(config, export=False)
    finally:
        logger.removeHandler(epoch_log)
    model = summary.pop("model")
    if export:
        with _Stopwatch(stages, "export"):
            summary["model_path"] = export_model(config, model, metadata, preprocess.data_dir(config),
                                                 summary["metrics"])
    del model
    _forget_models()
    return {"stages": stages, "summary": summary, "metadata": metadata, "epoch_seconds": epoch_log.seconds}


def _serving_fn(model_path: str):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)

    return tf.saved_model.load(model_path).signatures["serving_default"]


def serve(model: Any, texts: Sequence[str], output: str) -> list:
    """Serves raw texts through the exported model (path or loaded signature) in batches; one output's values."""
    import tensorflow as tf

    fn = _serving_fn(model) if isinstance(model, str) else model
    values: list = []
    for start in range(0, len(texts), SERVE_BATCH):
        batch = tf.constant(list(texts[start:start + SERVE_BATCH]), dtype=tf.string)
        values.extend(fn(text=batch)[output].numpy().tolist())
    return values


def _pct(x: Optional[float], digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f} %"


def _rate(correct: int, total: int) -> Optional[float]:
    return correct / total if total else None


# --------------------------------------------------------------------------- 1. throughput


def run_throughput(args, workdir: str) -> list[dict]:
    print(f"\n## 1. Training throughput ({args.throughput_epochs} epoch(s) per task, early stopping off, "
          f"no export; 1 worker, then 2 workers on localhost)", flush=True)
    results = []
    for label, config_file, extra in THROUGHPUT_TASKS:
        overrides = [*extra, f"output_dir={_q(os.path.join(workdir, 'throughput', label.replace(' ', '_')))}",
                     f"train.epochs={args.throughput_epochs}", "train.early_stopping_patience=0"]
        if config_file in ("dates.yaml", "reber.yaml") and args.throughput_generated_rows:
            overrides.append(f"data.generator.num_rows={args.throughput_generated_rows}")
        config = load_task(config_file, overrides)
        run = preprocess_and_train(config, export=False)
        summary, metadata = run["summary"], run["metadata"]
        train_cfg = config.train
        steps = max(1, math.ceil(metadata["rows"]["train"] / train_cfg.batch_size))
        later = run["epoch_seconds"][1:]
        steady = steps * train_cfg.batch_size * len(later) / sum(later) if later and sum(later) > 0 else None
        result = {
            "task": label, "family": train_cfg.model.family, "config": f"configs/{config_file}",
            "train_rows": metadata["rows"]["train"], "batch_size": train_cfg.batch_size,
            "epochs_run": summary["epochs_run"], "steps": summary["steps"], "fit_seconds": summary["seconds"],
            "examples_per_second": summary["examples_per_second"], "examples_per_second_after_epoch_1": steady,
            "epoch_seconds": run["epoch_seconds"], "preprocess_seconds": run["stages"]["preprocess"],
            "train_seconds": run["stages"]["train"], "metrics": summary["metrics"],
            "examples_per_second_2_workers": two_worker_rate(config, workdir) if args.two_workers else None,
        }
        results.append(result)
        print(f"  {label:9s} {result['train_rows']:>7,} train rows x {result['epochs_run']} epoch(s): "
              f"fit {result['fit_seconds']:6.1f} s, {result['examples_per_second']:>9,.1f} examples/s"
              + (f" ({steady:,.0f}/s after epoch 1)" if steady else "")
              + f"  [preprocess {result['preprocess_seconds']:.1f} s]"
              + (f"; 2 workers {result['examples_per_second_2_workers']:,.1f} examples/s"
                 if result["examples_per_second_2_workers"] else ""), flush=True)
    rows = [[r["task"], r["family"], f"{r['train_rows']:,}", str(r["batch_size"]), str(r["epochs_run"]),
             f"{r['fit_seconds']:.1f}", f"{r['examples_per_second']:,.1f}",
             "n/a" if r["examples_per_second_after_epoch_1"] is None else f"{r['examples_per_second_after_epoch_1']:,.0f}",
             "n/a" if r["examples_per_second_2_workers"] is None else f"{r['examples_per_second_2_workers']:,.1f}"]
            for r in results]
    header = ["task", "family", "train rows", "batch", "epochs", "fit s", "examples/s", "ex/s after epoch 1",
              "2 workers ex/s"]
    print()
    print(_text_table(header, rows, right={2, 3, 4, 5, 6, 7, 8}))
    print(f"workers: {TWO_WORKERS}")
    return results


def two_worker_rate(config, workdir: str) -> Optional[float]:
    """examples/s of the same training run by two worker processes on localhost (None if it failed)."""
    import socket
    import subprocess
    import yaml

    raw = config.to_dict()
    raw["output_dir"] = os.path.join(config.output_dir, "two_workers")
    os.makedirs(os.path.join(raw["output_dir"], config.task.name), exist_ok=True)
    shutil.copytree(os.path.join(config.task_dir, "data"), os.path.join(raw["output_dir"], config.task.name, "data"),
                    dirs_exist_ok=True)
    config_path = os.path.join(workdir, f"two_workers_{config.task.name}.yaml")
    with open(config_path, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f, allow_unicode=True)
    sockets = [socket.socket() for _ in range(2)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]}
    for sock in sockets:
        sock.close()
    workers = [subprocess.Popen(
        [sys.executable, "-m", "seqbeam.pipelines.cli", "train", "--config", config_path, "--no-export"],
        env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        errors = [worker.communicate(timeout=1800)[1] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    if any(worker.returncode for worker in workers):
        print(f"  2 workers failed: {errors[0][-500:]}", flush=True)
        return None
    metrics_path = os.path.join(raw["output_dir"], config.task.name, "train", "metrics.json")
    with open(metrics_path, encoding="utf-8") as f:
        return json.load(f)["examples_per_second"]


# --------------------------------------------------------------------------- 2. dates


def held_out_dates(config, rejected_ids: set) -> list:
    """The test split's generated examples, regenerated from the seed (ids ``dates-<seed>:<i>``)."""
    from seqbeam.transforms.synthetic import generate_examples, num_shards
    from seqbeam.transforms.validate import assign_split

    gen = config.data.generator
    return [example for shard in range(num_shards(gen)) for row_id, example in generate_examples(gen, shard)
            if row_id not in rejected_ids and assign_split(row_id, config.preprocess.splits) == "test"]


def rejected_ids(data_dir: str) -> set:
    import glob

    ids = set()
    for path in glob.glob(os.path.join(data_dir, "rejected", "rejected-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    ids.add(json.loads(line)["id"])
    return ids


def run_dates(args, workdir: str) -> dict:
    from seqbeam.pipelines.preprocess import data_dir
    from seqbeam.transforms.date_generator import FORMATS

    print(f"\n## 2. Date normalizer end to end ({args.dates_rows:,} generated dates, configs/dates.yaml settings, "
          f"{args.dates_epochs} epoch(s); 1 worker)", flush=True)
    config = load_task("dates.yaml", [f"output_dir={_q(os.path.join(workdir, 'dates'))}",
                                      f"data.generator.num_rows={args.dates_rows}",
                                      f"train.epochs={args.dates_epochs}"])
    run = preprocess_and_train(config, export=True)
    stages = {"generate + preprocess": run["stages"]["preprocess"], "train (incl. evaluation)": run["stages"]["train"],
              "export": run["stages"]["export"]}
    summary, metadata = run["summary"], run["metadata"]
    print(f"  rows: {metadata['rows']}; trained {summary['epochs_run']} epoch(s), "
          f"{summary['examples_per_second']:,.1f} examples/s; test metrics {summary['metrics'].get('test')}", flush=True)

    with _Stopwatch(stages, "regenerate held-out"):
        examples = held_out_dates(config, rejected_ids(data_dir(config)))
    if len(examples) != metadata["rows"]["test"]:
        print(f"  WARNING: regenerated {len(examples)} held-out dates, the job wrote {metadata['rows']['test']} "
              f"test rows", flush=True)
    with _Stopwatch(stages, "load SavedModel"):
        serving = _serving_fn(summary["model_path"])
    with _Stopwatch(stages, "serve held-out"):
        predicted = serve(serving, [e.raw for e in examples], "text")
    correct = [p.decode("utf-8") == e.iso for p, e in zip(predicted, examples)]

    per_format = []
    for fmt in FORMATS:
        counts = {False: [0, 0], True: [0, 0]}  # noisy -> [correct, total]
        for ok, e in zip(correct, examples):
            if e.format == fmt:
                counts[e.noisy][0] += ok
                counts[e.noisy][1] += 1
        per_format.append({"format": fmt, "clean_n": counts[False][1], "clean": _rate(*counts[False]),
                           "noisy_n": counts[True][1], "noisy": _rate(*counts[True])})
    clean = [ok for ok, e in zip(correct, examples) if not e.noisy]
    noisy = [ok for ok, e in zip(correct, examples) if e.noisy]
    overall = {"clean": _rate(sum(clean), len(clean)), "clean_n": len(clean),
               "noisy": _rate(sum(noisy), len(noisy)), "noisy_n": len(noisy),
               "all": _rate(sum(correct), len(correct)), "all_n": len(correct)}
    serve_s = stages["serve held-out"]
    failures = [(e.raw, e.iso, p.decode("utf-8"), e.format, e.noisy)
                for ok, p, e in zip(correct, predicted, examples) if not ok and not e.noisy][:10]

    print()
    rows = [[f["format"], str(f["clean_n"]), _pct(f["clean"]), _mark(f["clean"], TARGET_DATES_CLEAN),
             str(f["noisy_n"]), _pct(f["noisy"])] for f in per_format]
    rows.append(["ALL", str(overall["clean_n"]), _pct(overall["clean"]), _mark(overall["clean"], TARGET_DATES_CLEAN),
                 str(overall["noisy_n"]), _pct(overall["noisy"])])
    print(_text_table(["format", "clean n", "clean exact", f"clean >= {100 * TARGET_DATES_CLEAN:g} %",
                       "noisy n", "noisy exact"], rows, right={1, 2, 4, 5}))
    print(f"\n  exact match: clean {_pct(overall['clean'])} ({overall['clean_n']:,}; target >= "
          f"{100 * TARGET_DATES_CLEAN:g} %: {_mark(overall['clean'], TARGET_DATES_CLEAN)}), "
          f"noisy {_pct(overall['noisy'])} ({overall['noisy_n']:,}), all {_pct(overall['all'])} ({overall['all_n']:,})")
    if failures:
        print("  first clean misses (raw -> expected / predicted):")
        for raw, iso, got, fmt, _ in failures:
            print(f"    {raw!r:40s} -> {iso} / {got!r}  [{fmt}]")
    print("  wall time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
          + (f"; serving {len(examples) / serve_s:,.0f} dates/s" if serve_s > 0 else ""), flush=True)
    return {"rows": args.dates_rows, "epochs": args.dates_epochs, "epochs_run": summary["epochs_run"],
            "metadata_rows": metadata["rows"], "examples_per_second": summary["examples_per_second"],
            "job_metrics": summary["metrics"], "per_format": per_format, "overall": overall,
            "stages_seconds": stages, "serve_dates_per_second": len(examples) / serve_s if serve_s > 0 else None,
            "clean_misses": failures, "target_clean": TARGET_DATES_CLEAN, "workers": 1}


# --------------------------------------------------------------------------- 3. emoji k-fold


def read_emojiset(path: str) -> list[tuple[str, int]]:
    """``sentence,label[,extra...]`` rows (no header, any newline convention)."""
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for record in csv.reader(f):
            if len(record) >= 2 and record[0].strip() and record[1].strip().isdigit():
                rows.append((record[0], int(record[1].strip())))
    return rows


def run_kfold(args, workdir: str) -> Optional[dict]:
    print(f"\n## 3. Emojifier V1/V2, {args.folds}-fold cross-validation on {args.emoji_csv} "
          f"(from scratch: no pretrained vectors, GloVe is not available here)", flush=True)
    if not os.path.isfile(args.emoji_csv):
        print(f"  SKIPPED: {args.emoji_csv} not found")
        return None
    rows = read_emojiset(args.emoji_csv)
    if len(rows) < args.folds:
        raise RuntimeError(f"{args.emoji_csv}: {len(rows)} rows, fewer than {args.folds} folds")
    order = list(range(len(rows)))
    random.Random(args.seed).shuffle(order)
    folds = [order[k::args.folds] for k in range(args.folds)]
    print(f"  {len(rows)} rows, folds of {', '.join(str(len(f)) for f in folds)}; "
          f"epochs {args.emoji_epochs or 'from configs/emoji.yaml'} (fixed, all fold-train rows in the train split)",
          flush=True)
    results: dict[str, Any] = {"rows": len(rows), "folds": args.folds, "models": {}}
    for short, family in EMOJI_MODELS:
        accuracies = []
        for k, held in enumerate(folds):
            held_set = set(held)
            fold_dir = os.path.join(workdir, "kfold", family, f"fold{k}")
            os.makedirs(fold_dir, exist_ok=True)
            train_csv = os.path.join(fold_dir, "train.csv")
            with open(train_csv, "w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(["sentence", "label"])
                writer.writerows(rows[i] for i in order if i not in held_set)
            overrides = [f"output_dir={_q(os.path.join(fold_dir, 'out'))}", f"data.path={_q(train_csv)}",
                         "data.header=true", f"train.model.family={family}", "train.model.pretrained_vectors=''",
                         "preprocess.splits.train=1.0", "preprocess.splits.valid=0.0", "preprocess.splits.test=0.0",
                         "train.early_stopping_patience=0"]
            if args.emoji_epochs:
                overrides.append(f"train.epochs={args.emoji_epochs}")
            config = load_task("emoji.yaml", overrides)
            run = preprocess_and_train(config, export=True)
            labels = serve(run["summary"]["model_path"], [rows[i][0] for i in held], "label")
            accuracy = sum(int(p) == rows[i][1] for p, i in zip(labels, held)) / len(held)
            accuracies.append(accuracy)
            print(f"  {short} fold {k + 1}/{args.folds}: train {run['metadata']['rows']['train']} rows, "
                  f"held out {len(held)}: accuracy {_pct(accuracy, 1)}  "
                  f"[{run['summary']['epochs_run']} epochs, preprocess {run['stages']['preprocess']:.1f} s, "
                  f"train {run['stages']['train']:.1f} s, export {run['stages']['export']:.1f} s]", flush=True)
        mean = statistics.fmean(accuracies)
        std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        results["models"][short] = {"family": family, "fold_accuracy": accuracies, "mean": mean, "std": std,
                                    "reference": REFERENCE_EMOJI[family]}
        print(f"  {short}: {_pct(mean, 1)} ± {100 * std:.1f} (mean ± sample std over {args.folds} folds); "
              f"reference {REFERENCE_EMOJI[family]}", flush=True)
    return results


# --------------------------------------------------------------------------- 4. names


def run_names(args, workdir: str) -> Optional[dict]:
    print(f"\n## 4. Char LM on {args.names_file}: {args.samples} names sampled through the SavedModel", flush=True)
    if not os.path.isfile(args.names_file):
        print(f"  SKIPPED: {args.names_file} not found")
        return None
    with open(args.names_file, encoding="utf-8-sig") as f:
        training = [line.strip() for line in f if line.strip()]
    known = {name.lower() for name in training}
    overrides = [f"output_dir={_q(os.path.join(workdir, 'names'))}", f"data.path={_q(os.path.abspath(args.names_file))}"]
    if args.names_epochs:
        overrides.append(f"train.epochs={args.names_epochs}")
    config = load_task("names.yaml", overrides)
    run = preprocess_and_train(config, export=True)
    started = time.perf_counter()
    samples = [t.decode("utf-8").strip() for t in serve(run["summary"]["model_path"], [""] * args.samples, "text")]
    sample_s = time.perf_counter() - started
    non_empty = [s for s in samples if s]
    novel = [s for s in non_empty if s.lower() not in known]
    result = {
        "training_names": len(training), "train_split_rows": run["metadata"]["rows"]["train"],
        "epochs_run": run["summary"]["epochs_run"], "metrics": run["summary"]["metrics"],
        "samples": len(samples), "empty": len(samples) - len(non_empty),
        "novel_share": len(novel) / len(samples) if samples else None,
        "mean_length": statistics.fmean(len(s) for s in samples) if samples else None,
        "training_mean_length": statistics.fmean(len(n) for n in training),
        "examples": samples[:NAME_EXAMPLES], "sample_seconds": sample_s,
        "stages_seconds": run["stages"],
    }
    print(f"  {len(training):,} training names ({result['train_split_rows']:,} in the train split), "
          f"{result['epochs_run']} epoch(s); test metrics {run['summary']['metrics'].get('test')}")
    print(f"  novel: {_pct(result['novel_share'], 1)} of {len(samples)} samples (not in the training file, "
          f"case-insensitive; {result['empty']} empty)")
    print(f"  mean length: {result['mean_length']:.2f} characters (training list {result['training_mean_length']:.2f})")
    print(f"  sampling: {sample_s:.2f} s for {len(samples)} names (SavedModel load included)")
    print("  examples: " + ", ".join(s or "''" for s in result["examples"]), flush=True)
    return result


# --------------------------------------------------------------------------- report


def headline_rows(results: dict) -> list[list[str]]:
    rows = []
    for r in results.get("throughput") or []:
        steady = r["examples_per_second_after_epoch_1"]
        rows.append(["throughput", f"{r['task']} examples/s ({r['epochs_run']} ep.)",
                     f"{r['examples_per_second']:,.1f}" + (f" ({steady:,.0f} after ep. 1)" if steady else ""),
                     "1 worker" + (f"; 2 workers {r['examples_per_second_2_workers']:,.1f}"
                                   if r.get("examples_per_second_2_workers") else "")])
    dates = results.get("dates")
    if dates:
        o = dates["overall"]
        rows.append(["dates", f"exact match, clean ({o['clean_n']:,})", _pct(o["clean"]),
                     f">= {100 * TARGET_DATES_CLEAN:g} % {_mark(o['clean'], TARGET_DATES_CLEAN)}"])
        worst = min((f for f in dates["per_format"] if f["clean"] is not None), key=lambda f: f["clean"], default=None)
        if worst:
            rows.append(["dates", f"worst clean format ({worst['format']})", _pct(worst["clean"]),
                         f">= {100 * TARGET_DATES_CLEAN:g} % {_mark(worst['clean'], TARGET_DATES_CLEAN)}"])
        rows.append(["dates", f"exact match, noisy ({o['noisy_n']:,})", _pct(o["noisy"]), ""])
        rows.append(["dates", f"exact match, all ({o['all_n']:,})", _pct(o["all"]), ""])
        stages = dates["stages_seconds"]
        rows.append(["dates", f"wall time ({dates['rows']:,} rows, {dates['epochs_run']} epochs)",
                     f"{sum(stages.values()):.0f} s",
                     ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())])
    kfold = results.get("kfold")
    if kfold:
        for short, m in kfold["models"].items():
            rows.append(["emoji k-fold", f"{short} accuracy ({kfold['folds']} folds, no GloVe)",
                         f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f} %", m["reference"]])
    names = results.get("names")
    if names:
        rows.append(["names", f"novel names ({names['samples']} samples)", _pct(names["novel_share"], 1), ""])
        rows.append(["names", "mean length (chars)", f"{names['mean_length']:.2f}",
                     f"training list {names['training_mean_length']:.2f}"])
    return rows


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny rows and epochs (a few minutes): checks that everything runs; figures are not "
                             "meaningful")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="what to run (default: all)")
    parser.add_argument("--throughput-epochs", type=int, default=None, help="epochs per task in section 1 "
                        f"(default {DEFAULTS['throughput_epochs'][0]}, quick {DEFAULTS['throughput_epochs'][1]})")
    parser.add_argument("--throughput-generated-rows", type=int, default=None,
                        help="num_rows of the generated corpora (dates, reber) in section 1 (default: the config's; "
                             f"quick {DEFAULTS['throughput_generated_rows'][1]})")
    parser.add_argument("--dates-rows", type=int, default=None, help="generated dates in section 2 "
                        f"(default {DEFAULTS['dates_rows'][0]:,}, quick {DEFAULTS['dates_rows'][1]:,})")
    parser.add_argument("--dates-epochs", type=int, default=None, help="date normalizer epochs "
                        f"(default {DEFAULTS['dates_epochs'][0]}, quick {DEFAULTS['dates_epochs'][1]}); "
                        "early stopping as in configs/dates.yaml")
    parser.add_argument("--folds", type=int, default=None, help="k of the emoji k-fold "
                        f"(default {DEFAULTS['folds'][0]}, quick {DEFAULTS['folds'][1]})")
    parser.add_argument("--emoji-epochs", type=int, default=None,
                        help=f"epochs per fold (default: configs/emoji.yaml's; quick {DEFAULTS['emoji_epochs'][1]})")
    parser.add_argument("--emoji-csv", default=os.path.join(SHARED_DATA, "emojiset", "train_emoji.csv"),
                        help="EMOJISET train file, sentence,label[,...] without header (default: %(default)s)")
    parser.add_argument("--names-file", default=os.path.join(SHARED_DATA, "names", "dinos.txt"),
                        help="one name per line (default: %(default)s)")
    parser.add_argument("--names-epochs", type=int, default=None,
                        help=f"char LM epochs (default: configs/names.yaml's; quick {DEFAULTS['names_epochs'][1]})")
    parser.add_argument("--samples", type=int, default=None, help=f"names to sample (default {DEFAULTS['samples'][0]})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default: %(default)s)")
    parser.add_argument("--workdir", default=None,
                        help="where outputs go (default: a temporary folder, deleted at the end; a given one is kept)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--verbose", action="store_true", help="show the jobs' INFO logs (per-epoch lines)")
    parser.add_argument("--no-two-workers", dest="two_workers", action="store_false",
                        help="throughput: skip the 2-worker runs")
    args = parser.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    for name in ("throughput_epochs", "dates_rows", "dates_epochs", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logging.getLogger("seqbeam").setLevel(logging.INFO)  # the per-epoch lines feed EpochLog
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")
    if os.environ.pop("TF_CONFIG", None):
        print("note: TF_CONFIG was set and is ignored here: the benchmark starts its own workers")

    temporary = args.workdir is None
    workdir = tempfile.mkdtemp(prefix="seqbeam-train-bench-") if temporary else os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)

    import keras
    import psutil
    import tensorflow as tf

    print(f"seqbeam training benchmark{' (--quick: tiny rows/epochs, figures not meaningful)' if args.quick else ''}: "
          f"sections {', '.join(args.sections)}")
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, python {platform.python_version()}, "
          f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
          f"GPUs {len(tf.config.list_physical_devices('GPU'))}; {TWO_WORKERS}; workdir {workdir}", flush=True)
    results: dict[str, Any] = {}
    runners = {"throughput": run_throughput, "dates": run_dates, "kfold": run_kfold, "names": run_names}
    started_all = time.perf_counter()
    try:
        for section in SECTIONS:
            if section in args.sections:
                started = time.perf_counter()
                results[section] = runners[section](args, workdir)
                print(f"  ({section}: {time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)

    print("\n## Headline figures\n")
    print(_md_table(["section", "figure", "value", "reference / target"], headline_rows(results),
                    ["---", "---", "---:", "---"]))
    print(f"\nWorkers: throughput with 1 worker and with {TWO_WORKERS}; other sections 1 worker.")
    print(f"(benchmark wall time {time.perf_counter() - started_all:.0f} s)")
    if args.json:
        payload = {"results": results, "quick": args.quick,
                   "arguments": {k: v for k, v in vars(args).items() if k != "json"},
                   "environment": {"tensorflow": tf.__version__, "keras": keras.__version__,
                                   "python": platform.python_version(), "cpus": psutil.cpu_count(),
                                   "ram_gib": psutil.virtual_memory().total / 2**30, "platform": platform.platform(),
                                   "workers": 1}}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, ensure_ascii=False, default=float)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
