#!/usr/bin/env python
"""Benchmark of the training job: throughput, the date normalizer end to end, emoji k-fold, names.

Four sections, each run with the real jobs (``seqbeam.pipelines.preprocess.run_config``,
``seqbeam.pipelines.train.run_config``, ``seqbeam.models.export.export_model``) on configs
loaded from ``configs/*.yaml`` with ``--set``-style overrides (``output_dir`` in the work
dir, epochs, paths), on Beam's local runner, in this one process. Section 1 is
``train_throughput.py``, 3 ``emoji_kfold.py``, 2 and 4 ``train_accuracy.py``; this script runs them:

    python benchmarks/train.py                     # everything, full size (tens of minutes on 2 cores)
    python benchmarks/train.py --quick             # tiny rows/epochs: a few minutes, checks it all runs
    python benchmarks/train.py --sections dates --dates-rows 100000 --dates-epochs 20 --json dates.json
    python benchmarks/train.py --sections kfold --repeats 3    # the emoji cross-validation, 3 fold assignments
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any, Optional, Sequence

import emoji_kfold
import train_accuracy
import train_throughput
from common import ROOT, setup_logging, work_dir
from reporting import environment, environment_line, md_table, save_json

SHARED_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
SECTIONS = ("throughput", "dates", "kfold", "names")
RUNNERS = {"throughput": train_throughput.run_throughput, "dates": train_accuracy.run_dates,
           "kfold": emoji_kfold.run_kfold, "names": train_accuracy.run_names}

# Defaults: full run / --quick.
DEFAULTS = {
    "throughput_epochs": (3, 2),
    "throughput_generated_rows": (None, 2_000),  # None: the config's num_rows
    "dates_rows": (50_000, 3_000),
    "dates_epochs": (10, 1),
    "folds": (5, 2),
    "emoji_epochs": (None, 3),  # None: configs/emoji.yaml's epochs (V2: emoji_kfold.V2_SETTINGS)
    "names_epochs": (None, 2),  # None: configs/names.yaml's epochs
    "samples": (200, 200),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The script's flags; unset sizes take their full or ``--quick`` default."""
    description = "\n".join([__doc__, train_throughput.__doc__, train_accuracy.__doc__])
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
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
                        help="epochs per fold (default: configs/emoji.yaml's, V2 emoji_kfold.V2_SETTINGS'; "
                             f"quick {DEFAULTS['emoji_epochs'][1]})")
    parser.add_argument("--emoji-csv", default=os.path.join(SHARED_DATA, "emojiset", "train_emoji.csv"),
                        help="EMOJISET train file, sentence,label[,...] without header (default: %(default)s)")
    parser.add_argument("--emoji-vectors", default=emoji_kfold.EMOJI_VECTORS,
                        help="pretrained vectors of the emoji k-fold: a registered name or a file (default: %(default)s)")
    parser.add_argument("--kfold-variants", nargs="+", default=[v.name for v in emoji_kfold.VARIANTS] + [emoji_kfold.COURSE],
                        choices=[v.name for v in emoji_kfold.VARIANTS] + [emoji_kfold.COURSE], metavar="VARIANT",
                        help="emoji k-fold rows to run (default: all of %(choices)s)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="emoji k-fold: fold assignments, seeds --seed, --seed + 1, ... (default: %(default)s)")
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
    if args.repeats < 1:
        parser.error("--repeats must be positive")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the chosen sections, then prints the headline table (and writes the JSON)."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    logging.getLogger("seqbeam").setLevel(logging.INFO)  # the per-epoch lines feed common.EpochLog
    if os.environ.pop("TF_CONFIG", None):
        print("note: TF_CONFIG was set and is ignored here: the benchmark starts its own workers")
    env = environment("tensorflow", "keras")
    results: dict[str, Any] = {}
    started_all = time.perf_counter()
    with work_dir(args.workdir, "seqbeam-train-bench-") as workdir:
        quick = " (--quick: tiny rows/epochs, figures not meaningful)" if args.quick else ""
        print(f"seqbeam training benchmark{quick}: sections {', '.join(args.sections)}")
        print(f"{environment_line(env)}; {train_throughput.TWO_WORKERS}; workdir {workdir}", flush=True)
        for section in SECTIONS:
            if section in args.sections:
                started = time.perf_counter()
                results[section] = RUNNERS[section](args, workdir)
                print(f"  ({section}: {time.perf_counter() - started:.0f} s)", flush=True)

    print("\n## Headline figures\n")
    rows = (train_throughput.headline_rows(results.get("throughput")) + train_accuracy.headline_rows(results)
            + emoji_kfold.headline_rows(results.get("kfold")))
    print(md_table(["section", "figure", "value", "reference / target"], rows, ["---", "---", "---:", "---"]))
    print(f"\nWorkers: throughput with 1 worker and with {train_throughput.TWO_WORKERS}; other sections 1 worker.")
    print(f"(benchmark wall time {time.perf_counter() - started_all:.0f} s)")
    if args.json:
        save_json(args.json, {"results": results, "quick": args.quick,
                              "arguments": {k: v for k, v in vars(args).items() if k != "json"},
                              "environment": {**env, "workers": 1}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
