#!/usr/bin/env python
"""Emoji V1 inference as shipped (configs/emoji.yaml, GloVe's 400,004-word table), in-process and on
``multi_processing``, alternating: sentences/s, cores used and the rows each worker process handled.

The model is trained and exported once by ``infer_models.Models`` (as ``benchmarks/infer.py``
does); then each run serves the same corpus (``--rows`` lines of 1-3 sentences) with the
config's length buckets, alternating in-process and ``--direct_running_mode=multi_processing
--direct_num_workers=N``, ``--repeats`` times. Printed per run: what ``benchmarks/infer.py``
prints (job and wall rows/s, sentences/s, peak RSS, cores used by the job's processes and by
the rest of the machine, rows by worker process from the job's progress lines).

    python benchmarks/infer_cores.py --rows 1000000 --repeats 3

Target: >= 60,000 sentences/s in every run (in-process; 2 cores); on multi_processing every
worker handles rows.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from common import setup_logging, work_dir
from infer import parse_args as infer_args
from infer_models import Models, make_corpus
from infer_throughput import measure_run, progress_line
from reporting import save_json

TARGET_SENTENCES_PER_S = 60_000.0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Trains emoji V1 once, then alternates the runners ``--repeats`` times."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(argv)
    setup_logging()
    runners = {"in-process": [], "multi_processing": ["--direct_running_mode=multi_processing",
                                                      f"--direct_num_workers={args.workers}"]}
    results = []
    with work_dir(args.work_dir, "seqbeam-infer-cores-") as workdir:
        models = Models(infer_args(["--tasks", "emoji V1", "--sizes", str(args.rows)]), workdir)
        models.get("emoji_v1")
        corpus = make_corpus("emoji_v1", args.rows, 1, workdir, None)
        for repeat in range(args.repeats):
            for runner, beam_args in runners.items():
                result, _ = measure_run("emoji V1", "buckets", (), corpus, models, workdir, None, beam_args)
                result.update(runner=runner, repeat=repeat + 1)
                results.append(result)
                print(f"  [{runner}, run {repeat + 1}] {progress_line(result)}", flush=True)
    for runner in runners:
        rates = [r["sentences_per_second"] for r in results if r["runner"] == runner]
        print(f"{runner}: sentences/s {', '.join(f'{x:,.0f}' for x in rates)}; target >= "
              f"{TARGET_SENTENCES_PER_S:,.0f} in every run: {'ok' if min(rates) >= TARGET_SENTENCES_PER_S else 'MISS'}")
    if args.json:
        save_json(args.json, {"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
