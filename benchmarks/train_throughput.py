"""Section 1 of benchmarks/train.py, ``throughput``: training examples/s per task, 1 and 2 workers.

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
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
from typing import Optional

from common import load_task, override, preprocess_and_train, seqbeam_command, write_config
from reporting import num, text_table

# label, config file, overrides (on top of output_dir / epochs / early stopping / paths)
THROUGHPUT_TASKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("emoji V1", "emoji.yaml", ("train.model.family=emojifier_v1",)),
    ("emoji V2", "emoji.yaml", ("train.model.family=emojifier_v2",)),
    ("reber", "reber.yaml", ()),
    ("names", "names.yaml", ()),
    ("dates", "dates.yaml", ()),
    ("translate", "translate.yaml", ()),
)
TWO_WORKERS = "2 workers: two processes on this machine sharing its cores (MultiWorkerMirroredStrategy)"
TWO_WORKERS_TIMEOUT_S = 1800


def run_throughput(args, workdir: str) -> list[dict]:
    """Trains every task once with 1 worker (and once with 2); prints and returns the figures."""
    print(f"\n## 1. Training throughput ({args.throughput_epochs} epoch(s) per task, early stopping off, "
          f"no export; 1 worker, then 2 workers on localhost)", flush=True)
    results = [measure_task(label, config_file, extra, args, workdir)
               for label, config_file, extra in THROUGHPUT_TASKS]
    rows = [[r["task"], r["family"], f"{r['train_rows']:,}", str(r["batch_size"]), str(r["epochs_run"]),
             f"{r['fit_seconds']:.1f}", f"{r['examples_per_second']:,.1f}",
             num(r["examples_per_second_after_epoch_1"]), num(r["examples_per_second_2_workers"], 1)]
            for r in results]
    header = ["task", "family", "train rows", "batch", "epochs", "fit s", "examples/s", "ex/s after epoch 1",
              "2 workers ex/s"]
    print()
    print(text_table(header, rows, right={2, 3, 4, 5, 6, 7, 8}))
    print(f"workers: {TWO_WORKERS}")
    return results


def measure_task(label: str, config_file: str, extra: tuple[str, ...], args, workdir: str) -> dict:
    """One task's training figures: examples/s overall, after the first epoch, and with 2 workers."""
    overrides = [*extra, override("output_dir", os.path.join(workdir, "throughput", label.replace(" ", "_"))),
                 f"train.epochs={args.throughput_epochs}", "train.early_stopping_patience=0"]
    if config_file in ("dates.yaml", "reber.yaml") and args.throughput_generated_rows:
        overrides.append(f"data.generator.num_rows={args.throughput_generated_rows}")
    config = load_task(config_file, overrides)
    run = preprocess_and_train(config, export=False)
    summary, metadata = run["summary"], run["metadata"]
    train = config.train
    steps = max(1, math.ceil(metadata["rows"]["train"] / train.batch_size))
    later = run["epoch_seconds"][1:]
    steady = steps * train.batch_size * len(later) / sum(later) if later and sum(later) > 0 else None
    result = {
        "task": label, "family": train.model.family, "config": f"configs/{config_file}",
        "train_rows": metadata["rows"]["train"], "batch_size": train.batch_size,
        "epochs_run": summary["epochs_run"], "steps": summary["steps"], "fit_seconds": summary["seconds"],
        "examples_per_second": summary["examples_per_second"], "examples_per_second_after_epoch_1": steady,
        "epoch_seconds": run["epoch_seconds"], "preprocess_seconds": run["stages"]["preprocess"],
        "train_seconds": run["stages"]["train"], "metrics": summary["metrics"],
        "examples_per_second_2_workers": two_worker_rate(config, workdir) if args.two_workers else None,
    }
    two = result["examples_per_second_2_workers"]
    print(f"  {label:9s} {result['train_rows']:>7,} train rows x {result['epochs_run']} epoch(s): "
          f"fit {result['fit_seconds']:6.1f} s, {result['examples_per_second']:>9,.1f} examples/s"
          + (f" ({steady:,.0f}/s after epoch 1)" if steady else "")
          + f"  [preprocess {result['preprocess_seconds']:.1f} s]"
          + (f"; 2 workers {two:,.1f} examples/s" if two else ""), flush=True)
    return result


def two_worker_rate(config, workdir: str) -> Optional[float]:
    """examples/s of the same training run by two ``seqbeam train`` processes on localhost (None if it failed).

    The workers train on a copy of the data the 1-worker run preprocessed, in a task folder
    of their own.
    """
    from seqbeam.configs.schema import config_from_dict
    from seqbeam.pipelines import layout
    from seqbeam.storage import join_path, read_json

    raw = config.to_dict()
    raw["output_dir"] = join_path(config.output_dir, "two_workers")
    two = config_from_dict(raw, source="benchmarks/train_throughput.py")
    shutil.copytree(layout.data_dir(config), layout.data_dir(two), dirs_exist_ok=True)
    config_path = write_config(raw, os.path.join(workdir, f"two_workers_{config.task.name}.yaml"))
    sockets = [socket.socket() for _ in range(2)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]}
    for sock in sockets:
        sock.close()
    workers = [subprocess.Popen(
        seqbeam_command("train", "--config", config_path, "--no-export"),
        env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        errors = [worker.communicate(timeout=TWO_WORKERS_TIMEOUT_S)[1] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    if any(worker.returncode for worker in workers):
        print(f"  2 workers failed: {errors[0][-500:]}", flush=True)
        return None
    return read_json(layout.train_metrics_path(two))["examples_per_second"]


def headline_rows(results: Optional[list[dict]]) -> list[list[str]]:
    """The section's lines of the headline table."""
    rows = []
    for r in results or []:
        steady, two = r["examples_per_second_after_epoch_1"], r.get("examples_per_second_2_workers")
        rows.append(["throughput", f"{r['task']} examples/s ({r['epochs_run']} ep.)",
                     f"{r['examples_per_second']:,.1f}" + (f" ({steady:,.0f} after ep. 1)" if steady else ""),
                     "1 worker" + (f"; 2 workers {two:,.1f}" if two else "")])
    return rows

