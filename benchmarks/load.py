"""Load test: a million rows (or more) through preprocessing and inference on the multi_processing runner.

    python benchmarks/load.py [--rows 1000000] [--corpora dates words] [--workers 2]

For each corpus (generated dates, char level, seq2seq; the Zipf words corpus of
benchmarks/preprocess.py, word level, classifier), a small model is first trained on
20,000 rows of it, then the real jobs run as `seqbeam preprocess` and `seqbeam infer`
subprocesses with ``--direct_running_mode=multi_processing``. While each job runs, the
script reads the jobs' progress lines (transforms/progress.py) and samples the summed RSS
of the job's process tree, and prints a line each time another 10 % of the rows has gone
through: rows, seconds, rows/s so far, RSS now and peak. Memory must stay flat: the RSS
at 100 % is compared with the RSS at 20 % (start-up done). The end prints a Markdown table
for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional, Sequence

import yaml

from preprocess import dates_config, words_config, write_words_corpus
from reporting import md_table

MIB = 1024 * 1024
TRAIN_ROWS = 20_000
_PROGRESS = re.compile(r"progress (\w+): (\d+) rows by worker (\S+?) ")
TARGET_RSS_GROWTH = 1.25  # RSS at 100 % / RSS at 20 %
PROGRESS_EVERY = 20_000  # rows per progress line per worker: fine enough for 10 % marks at 1e6 rows


def tree_rss(process) -> int:
    """Summed RSS of a process and its descendants (bytes)."""
    import psutil

    total = 0
    try:
        processes = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class ProgressWatch:
    """Runs a job command, following its progress lines and its memory; prints every 10 %."""

    def __init__(self, label: str, command: Sequence[str], rows: int, log_path: str, job: str = "",
                 progress_every: int = PROGRESS_EVERY, env: Optional[dict] = None):
        self.label, self.command, self.rows, self.log_path = label, list(command), rows, log_path
        self.progress_every = progress_every
        self.env = env or {}
        # Progress lines of other passes (preprocessing's vocabulary pass) are kept apart.
        self.job = job or label.split()[-1]
        self.latest: dict[str, dict[str, int]] = {}  # job -> worker tag -> rows
        self.marks: list[dict] = []

    def _read(self, stream, log) -> None:
        for line in stream:
            log.write(line)
            match = _PROGRESS.search(line)
            if match:
                self.latest.setdefault(match.group(1), {})[match.group(3)] = int(match.group(2))

    def rows_by_pid(self, job: str) -> dict[str, int]:
        """Rows each worker process handled in a pass, from the last progress line of each of its DoFns."""
        by_pid: dict[str, int] = {}
        for tag, rows in self.latest.get(job, {}).items():
            pid = tag.split("/")[0]
            by_pid[pid] = by_pid.get(pid, 0) + rows
        return by_pid

    def run(self) -> dict:
        import psutil

        started = time.monotonic()
        with open(self.log_path, "w", encoding="utf-8") as log:
            job = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                        "SEQBEAM_PROGRESS_EVERY": str(self.progress_every), **self.env})
            reader = threading.Thread(target=self._read, args=(job.stdout, log), daemon=True)
            reader.start()
            process, peak, next_mark = psutil.Process(job.pid), 0, 1
            while job.poll() is None:
                rss = tree_rss(process)
                peak = max(peak, rss)
                done = sum(self.latest.get(self.job, {}).values())
                while next_mark <= 10 and done >= self.rows * next_mark / 10:
                    self._mark(next_mark * 10, done, time.monotonic() - started, rss, peak)
                    next_mark += 1
                time.sleep(0.2)
            reader.join()
        seconds = time.monotonic() - started
        if job.returncode:
            raise RuntimeError(f"{self.label} failed (exit {job.returncode}): see {self.log_path}")
        if next_mark <= 10:  # the last rows went through after the last sample
            self._mark(100, self.rows, seconds, self.marks[-1]["rss"] if self.marks else peak, peak)
        return {"label": self.label, "rows": self.rows, "seconds": seconds, "rows_per_s": self.rows / seconds,
                "peak_rss": peak, "marks": self.marks}

    def _mark(self, percent: int, done: int, seconds: float, rss: int, peak: int) -> None:
        self.marks.append({"percent": percent, "rows": done, "seconds": seconds, "rss": rss, "peak": peak})
        print(f"  {self.label:<22} {percent:>3} %  {done:>11,} rows  {seconds:7.1f} s  {done / seconds:>9,.0f} rows/s"
              f"  RSS {rss / MIB:7,.0f} MiB  peak {peak / MIB:7,.0f} MiB", flush=True)


def seqbeam(*args: str) -> list[str]:
    """The command line of a seqbeam job in this Python."""
    return [sys.executable, "-m", "seqbeam.pipelines.cli", *args]


def write_config(config: dict, path: str) -> str:
    """Writes a config dict as YAML; returns the path."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
    return path


def corpus_configs(corpus: str, rows: int, workdir: str) -> tuple[dict, dict]:
    """(config of the small training run, config of the load run) of one corpus."""
    if corpus == "dates":
        train_config = dates_config(TRAIN_ROWS, seed=1, output_dir=os.path.join(workdir, "train"))
        load = dates_config(rows, seed=2, output_dir=os.path.join(workdir, "load"))
        model = {"family": "seq2seq", "embedding_dim": 32, "units": 128, "attention": True, "dropout": 0.0}
        train_config["train"] = {"model": model, "epochs": 3, "batch_size": 64, "learning_rate": 0.005,
                                 "early_stopping_patience": 0}
    else:
        train_files = write_words_corpus(os.path.join(workdir, "words-train"), TRAIN_ROWS, seed=1)
        load_files = write_words_corpus(os.path.join(workdir, "words-load"), rows, seed=2)
        train_config = words_config(os.path.join(os.path.dirname(train_files[0]), "*.csv"),
                                    os.path.join(workdir, "train"))
        load = words_config(os.path.join(os.path.dirname(load_files[0]), "*.csv"), os.path.join(workdir, "load"))
        train_config["train"] = {"model": {"family": "emojifier_v1", "embedding_dim": 32}, "epochs": 1,
                                 "batch_size": 256, "early_stopping_patience": 0}
    for config in (train_config, load):
        config["preprocess"]["num_shards"] = 0  # no grouping step: one file per bundle
    load["infer"] = {"input": load["data"], "max_batch_size": 512, "num_shards": 0}
    return train_config, load


def run_corpus(corpus: str, rows: int, workers: int, workdir: str) -> list[dict]:
    """Trains the corpus's small model, then preprocesses and annotates ``rows`` rows under load."""
    os.makedirs(workdir, exist_ok=True)
    train_config, load = corpus_configs(corpus, rows, workdir)
    train_path = write_config(train_config, os.path.join(workdir, "train.yaml"))
    print(f"{corpus}: training the model the load run serves ({TRAIN_ROWS:,} rows)", flush=True)
    for job in ("preprocess", "train"):
        subprocess.run(seqbeam(job, "--config", train_path), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    model_root = os.path.join(workdir, "train", train_config["task"]["name"], "model")
    load["infer"]["model_path"] = os.path.join(model_root, sorted(os.listdir(model_root))[-1])
    load_path = write_config(load, os.path.join(workdir, "load.yaml"))
    runner = ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    results = []
    for job in ("preprocess", "infer"):
        label = f"{corpus} {job}"
        watch = ProgressWatch(label, seqbeam(job, "--config", load_path, *runner), rows,
                              os.path.join(workdir, f"{job}.log"))
        result = watch.run()
        result["accounted"] = accounted_rows(job, os.path.join(workdir, "load", load["task"]["name"]))
        results.append(result)
    return results


def accounted_rows(job: str, task_dir: str) -> dict:
    """The job's own row accounting (metadata.json or infer_summary.json)."""
    if job == "preprocess":
        with open(os.path.join(task_dir, "data", "metadata.json"), encoding="utf-8") as f:
            rows = json.load(f)["rows"]
        return {"in": rows["in"], "out": rows["train"] + rows["valid"] + rows["test"], "rejected": rows["rejected"]}
    with open(os.path.join(task_dir, "infer_summary.json"), encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    return {"in": rows["in"], "out": rows["out"], "rejected": rows["rejected"]}


def flatness(result: dict) -> Optional[float]:
    """RSS at the last 10 % mark over RSS at 20 % (after start-up and the first bundles)."""
    by_percent = {m["percent"]: m["rss"] for m in result["marks"]}
    if 20 not in by_percent or not by_percent[20]:
        return None
    return by_percent[max(by_percent)] / by_percent[20]


def table(results: Sequence[dict], workers: int) -> str:
    """The README table."""
    rows = []
    for r in results:
        growth = flatness(r)
        lost = r["accounted"]["in"] - r["accounted"]["out"] - r["accounted"]["rejected"]
        rows.append([r["label"], f"{r['rows']:,}", f"{r['seconds']:.0f}", f"{r['rows_per_s']:,.0f}",
                     f"{r['peak_rss'] / MIB:,.0f}", "—" if growth is None else f"{growth:.2f}",
                     f"{r['accounted']['in']:,} / {r['accounted']['out']:,} / {r['accounted']['rejected']:,}",
                     str(lost)])
    header = ["job", "rows", "seconds", "rows/s", "peak RSS MiB (tree)", "RSS 100 % / 20 %",
              "in / out / rejected", "lost"]
    return (f"multi_processing, {workers} workers\n\n"
            + md_table(header, rows, ["---"] + ["---:"] * 7))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The script's flags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per corpus (default 1e6)")
    parser.add_argument("--corpora", nargs="+", choices=("dates", "words"), default=["dates", "words"])
    parser.add_argument("--workers", type=int, default=2, help="--direct_num_workers (default 2)")
    parser.add_argument("--workdir", default="", help="keep the corpora and outputs here (default: a temp folder)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the load test and prints its figures."""
    args = parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="seqbeam-load-")
    results = []
    for corpus in args.corpora:
        results += run_corpus(corpus, args.rows, args.workers, os.path.join(workdir, corpus))
    print()
    print(table(results, args.workers))
    growth = [g for g in map(flatness, results) if g is not None]
    worst = max(growth) if growth else None
    verdict = "met" if worst is not None and worst <= TARGET_RSS_GROWTH else "NOT met"
    print(f"\nflat memory (RSS at 100 % <= {TARGET_RSS_GROWTH}x RSS at 20 %): {verdict}"
          + (f" (worst {worst:.2f}x)" if worst is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
