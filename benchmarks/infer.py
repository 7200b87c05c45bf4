#!/usr/bin/env python
"""Benchmark of the batch-inference job: throughput per task, and the date normalizer vs date libraries.

Everything is measured with the real jobs in this one process, on Beam's local runner
(``FnApiRunner``, in-process): models are preprocessed, trained and exported by
``seqbeam.pipelines.preprocess.run_config`` and ``seqbeam.pipelines.train.run_config`` on
configs loaded from ``configs/*.yaml`` with ``--set``-style overrides (``output_dir`` in the
work dir, epochs, paths), then served by ``seqbeam.pipelines.infer.run_config`` on corpora
written here as text files (one row per line, ``infer.input={format: text, path: ...}``;
row ids ``<file>:<byte offset of the line>``). The models and corpora are
``infer_models.py``; section 1 is ``infer_throughput.py``, section 2 ``infer_dates.py``.

    python benchmarks/infer.py --quick                 # tiny sizes and epochs: a few minutes, checks it all runs
    python benchmarks/infer.py --json /tmp/infer.json  # the full run (about an hour on 2 cores)
    python benchmarks/infer.py --sections dates --dates-compare-rows 2000
    python benchmarks/infer.py --tasks dates "emoji V1" --sizes 10000 100000 --keep --work-dir /tmp/ib
    python benchmarks/infer.py --sections throughput --tasks "emoji V1" --sizes 1000000 \
        -- --direct_running_mode=multi_processing --direct_num_workers=2
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, Optional, Sequence

import infer_dates
import infer_models
import infer_throughput
from common import setup_logging, work_dir
from infer_models import VOCAB_MAX, Models
from infer_throughput import RUNS
from reporting import environment, environment_line, md_table, save_json

SECTIONS = ("throughput", "dates")
RUNNERS = {"throughput": infer_throughput.run_throughput, "dates": infer_dates.run_dates}

# Defaults: full run / --quick.
DEFAULTS = {
    "sizes": ([10_000, 100_000, 1_000_000], [300, 1_000]),
    "translate_max_rows": (100_000, 1_000),
    "beam_max_rows": (20_000, 1_000),
    "dates_compare_rows": (10_000, 200),
    "emoji_epochs": (20, 2),
    "dates_rows": (50_000, 2_000),
    "dates_epochs": (10, 1),
    "translate_pairs": (30_000, 600),
    "translate_epochs": (2, 1),
    "translate_lexicon": (10_000, 2_000),
    "translate_batch": (64, 64),
    "reber_epochs": (5, 1),
    "reber_rows": (None, 2_000),  # None: the config's num_rows
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The script's flags; unset sizes take their full or ``--quick`` default."""
    description = "\n".join([__doc__, infer_models.__doc__, infer_throughput.__doc__, infer_dates.__doc__])
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and epochs (a few minutes): checks that everything runs; figures are not "
                             "meaningful")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="what to run (default: all)")
    parser.add_argument("--tasks", nargs="+", choices=tuple(RUNS), default=list(RUNS),
                        help="throughput runs (default: all)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N",
                        help=f"input rows per throughput run (default {DEFAULTS['sizes'][0]}, "
                             f"quick {DEFAULTS['sizes'][1]})")
    parser.add_argument("--translate-max-rows", type=int, default=None,
                        help=f"largest greedy translation run (default {DEFAULTS['translate_max_rows'][0]:,})")
    parser.add_argument("--beam-max-rows", type=int, default=None,
                        help=f"largest beam-search translation run (default {DEFAULTS['beam_max_rows'][0]:,})")
    parser.add_argument("--max-rows", action="append", default=[], metavar="TASK=N",
                        help="largest run of a task, e.g. --max-rows 'emoji V2=100000' (repeatable)")
    parser.add_argument("--dates-compare-rows", type=int, default=None,
                        help=f"clean dates, and as many noisy ones, in section 2 "
                             f"(default {DEFAULTS['dates_compare_rows'][0]:,})")
    parser.add_argument("--skip-dateparser", action="store_true", help="section 2 without dateparser (slow)")
    parser.add_argument("--emoji-epochs", type=int, default=None,
                        help=f"emoji V1/V2 epochs (default {DEFAULTS['emoji_epochs'][0]})")
    parser.add_argument("--dates-rows", type=int, default=None,
                        help=f"generated training dates (default {DEFAULTS['dates_rows'][0]:,})")
    parser.add_argument("--dates-epochs", type=int, default=None,
                        help=f"date normalizer epochs (default {DEFAULTS['dates_epochs'][0]}; early stopping as "
                             "in configs/dates.yaml)")
    parser.add_argument("--translate-pairs", type=int, default=None,
                        help=f"synthetic parallel pairs (default {DEFAULTS['translate_pairs'][0]:,})")
    parser.add_argument("--translate-epochs", type=int, default=None,
                        help=f"translation epochs (default {DEFAULTS['translate_epochs'][0]})")
    parser.add_argument("--translate-lexicon", type=int, default=None,
                        help=f"words per synthetic lexicon (default {DEFAULTS['translate_lexicon'][0]:,}; the "
                             f"vocabularies are capped at {VOCAB_MAX:,})")
    parser.add_argument("--translate-batch", type=int, default=None,
                        help=f"translation training batch size (default {DEFAULTS['translate_batch'][0]})")
    parser.add_argument("--reber-epochs", type=int, default=None,
                        help=f"Reber classifier epochs (default {DEFAULTS['reber_epochs'][0]})")
    parser.add_argument("--reber-rows", type=int, default=None, help="generated Reber training rows (default: "
                        "configs/reber.yaml's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpora made here (default: %(default)s)")
    parser.add_argument("--work-dir", default=None,
                        help="where models, inputs and outputs go (default: a temporary folder, deleted at the end "
                             "unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and the input files")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--verbose", action="store_true", help="show the jobs' INFO logs")
    parser.add_argument("beam_args", nargs="*", help="Beam flags of the section 1 jobs, after -- (e.g. "
                        "--direct_running_mode=multi_processing --direct_num_workers=2)")
    args = parser.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if any(n < 1 for n in args.sizes):
        parser.error("--sizes must be positive")
    for item in args.max_rows:
        name, sep, value = item.rpartition("=")
        if not sep or name not in RUNS or not value.isdigit():
            parser.error(f"--max-rows {item!r}: expected TASK=N with TASK one of {', '.join(RUNS)}")
    for name in ("translate_max_rows", "beam_max_rows", "dates_compare_rows", "emoji_epochs", "dates_rows",
                 "dates_epochs", "translate_pairs", "translate_epochs", "translate_lexicon", "reber_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


class _DropBeamNoise(logging.Filter):
    """Drops Beam's per-batch 'Resource module is not available' warning (RunInference memory probe)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Resource module is not available")


def models_table(trained: dict[str, dict]) -> str:
    """The models trained for this run, with their held-out metrics."""
    rows = [[key, m["family"], "/".join(str(m["rows"].get(s, 0)) for s in ("train", "valid", "test")),
             json.dumps(m["vocab_sizes"]), str(m["epochs_run"]), f"{m['seconds']:.0f}",
             json.dumps({split: {name: round(value, 4) for name, value in (values or {}).items()}
                         for split, values in (m["metrics"] or {}).items()})]
            for key, m in trained.items()]
    return md_table(["model", "family", "train/valid/test rows", "vocab", "epochs", "train s", "held-out metrics"],
                    rows, ["---", "---", "---:", "---", "---:", "---:", "---"])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the chosen sections, then prints the models and the headline table (and writes the JSON)."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropBeamNoise())
    environment_facts = environment("tensorflow", "keras", "apache_beam", *infer_dates.libraries(args))
    results: dict[str, Any] = {}
    started_all = time.perf_counter()
    with work_dir(args.work_dir, "seqbeam-infer-bench-", keep=args.keep) as workdir:
        quick = " (--quick: tiny sizes/epochs, figures not meaningful)" if args.quick else ""
        print(f"seqbeam inference benchmark{quick}: sections {', '.join(args.sections)}")
        print(f"{environment_line(environment_facts)}; Beam local runner in this process; workdir {workdir}",
              flush=True)
        models = Models(args, workdir)
        for section in SECTIONS:
            if section in args.sections:
                started = time.perf_counter()
                results[section] = RUNNERS[section](args, workdir, models)
                print(f"  ({section}: {time.perf_counter() - started:.0f} s)", flush=True)
    results["models"] = models.trained

    print("\n## Models trained for this run\n")
    print(models_table(models.trained))
    print("\n## Headline figures\n")
    rows = infer_throughput.headline_rows(results.get("throughput")) + infer_dates.headline_rows(results.get("dates"))
    print(md_table(["section", "figure", "value", "target"], rows, ["---", "---", "---:", "---"]))
    wall = time.perf_counter() - started_all
    print(f"\n(benchmark wall time {wall:.0f} s)")
    if args.json:
        save_json(args.json, {"results": results, "quick": args.quick, "wall_seconds": wall,
                              "arguments": {k: v for k, v in vars(args).items() if k != "json"},
                              "environment": environment_facts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
