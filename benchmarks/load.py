"""Load test: a million rows (or more) through preprocessing and inference on the multi_processing runner.

    python benchmarks/load.py [--rows 1000000] [--corpora dates words] [--workers 2] [--train-rows 20000]

For each corpus (generated dates, char level, seq2seq; the Zipf words corpus of
benchmarks/common.py, word level, classifier), a small model is first trained on
20,000 rows of it (``--train-rows``), then the real jobs run as `seqbeam preprocess` and
`seqbeam infer` subprocesses with ``--direct_running_mode=multi_processing``. While each job runs, the
script reads the jobs' progress lines (transforms/progress.py) and samples the summed RSS
of the job's process tree, and prints a line each time another 10 % of the rows has gone
through: rows, seconds, rows/s so far, RSS now and peak. Memory must stay flat: the RSS
at 100 % is compared with the RSS at 20 % (start-up done). The end prints a Markdown table
for the README.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Optional, Sequence

from common import (
    ProgressWatch, dates_config, multi_processing, seqbeam_command, train_model, words_config, write_config,
    write_words_corpus,
)
from reporting import MIB, md_table

TRAIN_ROWS = 20_000
TARGET_RSS_GROWTH = 1.25  # RSS at 100 % / RSS at 20 %


def corpus_configs(corpus: str, rows: int, workdir: str, train_rows: int = TRAIN_ROWS) -> tuple[dict, dict]:
    """(config of the small training run, config of the load run) of one corpus."""
    if corpus == "dates":
        train_config = dates_config(train_rows, seed=1, output_dir=os.path.join(workdir, "train"))
        load = dates_config(rows, seed=2, output_dir=os.path.join(workdir, "load"))
        model = {"family": "seq2seq", "embedding_dim": 32, "units": 128, "attention": True, "dropout": 0.0}
        train_config["train"] = {"model": model, "epochs": 3, "batch_size": 64, "learning_rate": 0.005,
                                 "early_stopping_patience": 0}
    else:
        train_files = write_words_corpus(os.path.join(workdir, "words-train"), train_rows, seed=1)
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


def run_corpus(corpus: str, rows: int, workers: int, workdir: str, train_rows: int = TRAIN_ROWS) -> list[dict]:
    """Trains the corpus's small model, then preprocesses and annotates ``rows`` rows under load."""
    os.makedirs(workdir, exist_ok=True)
    train_config, load = corpus_configs(corpus, rows, workdir, train_rows)
    print(f"{corpus}: training the model the load run serves ({train_rows:,} rows)", flush=True)
    load["infer"]["model_path"] = train_model(train_config, os.path.join(workdir, "train.yaml"))
    load_path = write_config(load, os.path.join(workdir, "load.yaml"))
    results = []
    for job in ("preprocess", "infer"):
        label = f"{corpus} {job}"
        watch = ProgressWatch(label, seqbeam_command(job, "--config", load_path, *multi_processing(workers)), rows,
                              os.path.join(workdir, f"{job}.log"))
        result = watch.run()
        result["accounted"] = accounted_rows(job, load, load_path)
        results.append(result)
    return results


def accounted_rows(job: str, config: dict, source: str) -> dict:
    """The job's own row accounting (its metadata.json or infer_summary.json)."""
    from seqbeam.configs.schema import config_from_dict
    from seqbeam.models.inputs import load_metadata
    from seqbeam.pipelines import layout
    from seqbeam.storage import read_json

    resolved = config_from_dict(config, source=source)
    if job == "preprocess":
        rows = load_metadata(layout.data_dir(resolved))["rows"]
        return {"in": rows["in"], "out": rows["train"] + rows["valid"] + rows["test"], "rejected": rows["rejected"]}
    rows = read_json(layout.infer_summary_path(resolved))["rows"]
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
    parser.add_argument("--train-rows", type=int, default=TRAIN_ROWS,
                        help="rows the served model is trained on first (default %(default)s)")
    parser.add_argument("--workdir", default="", help="keep the corpora and outputs here (default: a temp folder)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the load test and prints its figures."""
    args = parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="seqbeam-load-")
    results = []
    for corpus in args.corpora:
        results += run_corpus(corpus, args.rows, args.workers, os.path.join(workdir, corpus), args.train_rows)
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
