"""``seqbeam generate``: write a synthetic corpus to a file.

    seqbeam generate dates -n 10000 -o dates.jsonl [--seed 0] [--day-first | --both-orders] [--noise-rate 0.1]
                           [--real-world-rate 0.75]
    seqbeam generate reber -n 10000 -o reber.tsv

The format follows the extension: ``.jsonl`` (default), ``.csv`` or ``.tsv`` with a
header. Dates have columns ``raw, iso, format, noisy, day_first``; Reber strings ``text, label``.
The same arguments always write the same file.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import logging
from typing import Iterable, Optional, Sequence

from apache_beam.io.filesystems import FileSystems

from seqbeam.transforms.date_generator import generate_dates
from seqbeam.transforms.reber_generator import generate_reber

_LOG = logging.getLogger(__name__)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The generate command's flags."""
    parser = argparse.ArgumentParser(prog="seqbeam generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=("dates", "reber"), help="which corpus to generate")
    parser.add_argument("-n", "--num-rows", type=int, required=True, help="number of rows")
    parser.add_argument("-o", "--output", required=True, help="output file (.jsonl, .csv or .tsv; local or gs://)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--day-first", action="store_true", help="dates: numeric formats are DD/MM/YYYY")
    parser.add_argument("--both-orders", action="store_true",
                        help="dates: each row its own day order, half and half (its day_first column says which)")
    parser.add_argument("--real-world-rate", type=float, default=0.0,
                        help="dates: share of rows in the real-world forms (times, zones, sentences, ...), default 0")
    parser.add_argument("--noise-rate", type=float, default=0.1,
                        help="dates: share of noisy inputs (typos, OCR confusions), default 0.1")
    args = parser.parse_args(argv)
    if args.num_rows < 0:
        parser.error("-n/--num-rows must be >= 0")
    if not 0.0 <= args.noise_rate <= 1.0:
        parser.error("--noise-rate must lie in [0, 1]")
    if not 0.0 <= args.real_world_rate <= 1.0:
        parser.error("--real-world-rate must lie in [0, 1]")
    if args.day_first and args.both_orders:
        parser.error("--day-first and --both-orders exclude each other")
    return args


def records(args: argparse.Namespace) -> Iterable[dict]:
    """The generated rows as dicts, in order."""
    if args.task == "dates":
        examples = generate_dates(args.num_rows, args.seed, day_first=None if args.both_orders else args.day_first,
                                  noise_rate=args.noise_rate, real_world_rate=args.real_world_rate)
    else:
        examples = generate_reber(args.num_rows, args.seed)
    return (dataclasses.asdict(e) for e in examples)


def write_records(rows: Iterable[dict], path: str) -> int:
    """Writes rows as JSONL, CSV or TSV (by extension); returns how many were written."""
    delimiter = {"csv": ",", "tsv": "\t"}.get(path.rsplit(".", 1)[-1].lower())
    count = 0
    with FileSystems.create(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
        writer = None
        for row in rows:
            if delimiter is None:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(row), delimiter=delimiter)
                    writer.writeheader()
                writer.writerow(row)
            count += 1
    return count


def run(argv: Optional[Sequence[str]] = None) -> int:
    """Generates the corpus the flags describe; returns the row count."""
    args = parse_args(argv)
    count = write_records(records(args), args.output)
    _LOG.info("wrote %d %s rows to %s", count, args.task, args.output)
    return count
