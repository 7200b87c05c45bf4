#!/usr/bin/env python
"""Benchmark of the preprocessing job: throughput, peak memory and distance to an I/O floor.

For each corpus and each row count N the script runs the real job
(``seqbeam.pipelines.preprocess.run_config``) on a config built with
``config_from_dict``, then prints one row of figures:

* ``seconds``, ``rows/s``: wall time of ``run_config`` (graph construction, Beam worker
  start-up, the job, the metadata read-back) and N / seconds.
* ``peak RSS MiB``: the largest sum, sampled every 0.2 s, of the RSS of the process that
  runs the job and of all its descendants (the Beam SDK worker subprocesses in
  ``multi_processing`` mode). Shared pages (TensorFlow's libraries) count once per
  process, as RSS does.
* ``floor s``: one process, no Beam, no tokenization: read the input bytes, then
  gzip-compress (level 6, what Beam's GZIP sink uses) the job's raw output records, i.e.
  the decompressed bytes of every ``*.tfrecord.gz`` shard it wrote, to a file.
  ``ratio`` = seconds / floor s.

Corpora:

* ``dates``: the generated date corpus, configured as ``configs/dates.yaml`` (char level,
  seq2seq) with ``num_rows`` N and ``rows_per_shard`` 50000. The floor's input bytes are
  the same rows written once as a ``text,target`` CSV (outside any timing).
* ``words``: a word-level classifier corpus (``common.write_words_corpus``), deterministic from ``--seed``:
  sentences of 5-20 words drawn from a Zipf-like vocabulary of 20k synthetic words plus
  punctuation, labels 0..4, written once per N as 4 CSV files ``sentence,label``;
  configured like ``configs/emoji.yaml`` with max_length 32 and a 20000-token vocabulary.

By default each measurement runs in a fresh Python process (``--no-isolate`` to run them
all in this one), so that a run's peak RSS is its own and not what earlier runs left in
the heap. Outputs of a run are deleted once measured; the generated inputs stay in the
work dir (reused when the same ``--workdir`` is given again), which is itself deleted
when it was a temporary one.

    python benchmarks/preprocess.py                        # N = 1e4, 1e5, 1e6, both corpora
    python benchmarks/preprocess.py --rows 10000 20000 --corpus words --json bench.json
    python benchmarks/preprocess.py --mode in_process      # Beam's in-memory engine
    python benchmarks/preprocess.py -- --direct_num_workers=4   # extra Beam flags after --

Targets (printed with the figures): >= 20,000 rows/s at 1e6 word-level rows; ratio <= 5;
peak RSS flat in N (largest N within 1.25x of the smallest).
"""

from __future__ import annotations

import argparse
import csv
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Optional, Sequence

from common import cached_files, dates_config, setup_logging, stamp_files, work_dir, words_config, write_words_corpus
from reporting import MIB, TreeRssSampler, environment, environment_line, md_table, save_json, text_table

CORPORA = ("dates", "words")
DEFAULT_ROWS = (10_000, 100_000, 1_000_000)
MODES = {
    "multi_processing": ["--direct_running_mode=multi_processing"],
    "in_process": ["--direct_running_mode=in_memory"],
}

# Targets.
TARGET_ROWS_PER_S = 20_000.0  # word-level rows per second ...
TARGET_ROWS_PER_S_AT = 1_000_000  # ... at this many rows (and above)
TARGET_RATIO = 5.0  # pipeline seconds / floor seconds
TARGET_RSS_GROWTH = 1.25  # "flat": peak RSS at the largest N / at the smallest N


# --------------------------------------------------------------------------- inputs


def write_dates_input(directory: str, config: dict) -> list[str]:
    """The rows the config's dates generator yields, written once as a ``text,target`` CSV (the floor's input)."""
    from seqbeam.configs.schema import config_from_dict
    from seqbeam.transforms.synthetic import generate_shard, num_shards

    generator = config_from_dict(config, source="benchmarks/preprocess.py").data.generator
    stamp = {"corpus": "dates", "rows": generator.num_rows, "seed": generator.seed,
             "rows_per_shard": generator.rows_per_shard, "day_first": generator.day_first,
             "real_world_rate": generator.real_world_rate, "version": 2}
    cached = cached_files(directory, stamp)
    if cached:
        return cached
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    path = os.path.join(directory, "dates.csv")
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "target"])
        for shard in range(num_shards(generator)):
            for row in generate_shard(generator, shard):
                writer.writerow([row.text, row.target])
    stamp_files(directory, stamp, [path])
    return [path]


def prepare(corpus: str, rows: int, seed: int, workdir: str, num_shards: int) -> tuple[list[str], dict]:
    """(input files for the floor, plain-data config) of one measurement."""
    inputs = os.path.join(workdir, "inputs", f"{corpus}-{rows}")
    output_dir = os.path.join(workdir, "runs", f"{corpus}-{rows}")
    if corpus == "dates":
        config = dates_config(rows, seed, output_dir)
        files = write_dates_input(inputs, config)
    else:
        files = write_words_corpus(inputs, rows, seed)
        config = words_config(os.path.join(inputs, "words-*.csv"), output_dir)
    config["preprocess"]["num_shards"] = num_shards
    return files, config


# --------------------------------------------------------------------------- measurement


def measure_pipeline(config_dict: dict, beam_args: Sequence[str]) -> dict:
    """Runs the job once in this process; wall time, peak tree RSS and the row accounting."""
    from seqbeam.configs.schema import config_from_dict
    from seqbeam.pipelines.layout import data_dir
    from seqbeam.pipelines.preprocess import run_config

    config = config_from_dict(config_dict, source="benchmarks/preprocess.py")
    with TreeRssSampler() as sampler:
        started = time.perf_counter()
        metadata = run_config(config, list(beam_args))
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_mib": sampler.peak / MIB,
        "peak_rss_main_mib": sampler.peak_root / MIB,
        "max_processes": sampler.peak_processes,
        "rss_samples": sampler.samples,
        "rows_out": metadata["rows"],
        "truncated": metadata.get("truncated", 0),
        "data_dir": data_dir(config),
    }


def measure_isolated(config_dict: dict, beam_args: Sequence[str], scratch: str, timeout: float) -> dict:
    """``measure_pipeline`` in a fresh Python process (this script with ``--child``)."""
    spec_path = os.path.join(scratch, "child-spec.json")
    result_path = os.path.join(scratch, "child-result.json")
    log_path = os.path.join(scratch, "child.log")
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump({"config": config_dict, "beam_args": list(beam_args)}, f)
    if os.path.exists(result_path):
        os.remove(result_path)
    with open(log_path, "wb") as log:
        try:
            code = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", spec_path, result_path],
                                  stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    if code != 0 or not os.path.exists(result_path):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-6000:]
        raise RuntimeError(f"benchmark child failed ({code}); last log lines:\n{tail}")
    with open(result_path, encoding="utf-8") as f:
        return json.load(f)


def child_main(spec_path: str, result_path: str) -> int:
    """The ``--child`` side of :func:`measure_isolated`: one measurement, its result as JSON."""
    setup_logging()
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    result = measure_pipeline(spec["config"], spec["beam_args"])
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


def measure_floor(input_files: Sequence[str], data_dir: str, scratch: str) -> dict:
    """Read the input bytes + gzip (level 6) the job's raw output records to a file, in one process.

    The raw records are the decompressed contents of the job's ``*.tfrecord.gz`` shards
    (TFRecord framing included); decompressing them is not timed.
    """
    shards = sorted(glob.glob(os.path.join(data_dir, "*.tfrecord.gz")))
    if not shards:
        raise RuntimeError(f"no *.tfrecord.gz shard under {data_dir}")
    input_bytes = 0
    started = time.perf_counter()
    for path in input_files:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(MIB)
                if not chunk:
                    break
                input_bytes += len(chunk)
    read_s = time.perf_counter() - started

    out_path = os.path.join(scratch, "floor-output.gz")
    raw_bytes = gz_bytes = 0
    write_s = 0.0
    with open(out_path, "wb") as out:
        for shard in shards:
            with open(shard, "rb") as f:
                raw = gzip.decompress(f.read())
            raw_bytes += len(raw)
            started = time.perf_counter()
            out.write(gzip.compress(raw, compresslevel=6))
            out.flush()
            write_s += time.perf_counter() - started
            del raw
        gz_bytes = out.tell()
    os.remove(out_path)
    return {
        "floor_s": read_s + write_s,
        "floor_read_s": read_s,
        "floor_write_s": write_s,
        "input_bytes": input_bytes,
        "output_raw_bytes": raw_bytes,
        "output_gz_bytes": gz_bytes,
        "output_shards": len(shards),
    }


# --------------------------------------------------------------------------- report


def _checks(result: dict) -> str:
    """Targets next to one row's figures."""
    parts = []
    if result["corpus"] == "words" and result["rows"] >= TARGET_ROWS_PER_S_AT:
        ok = result["rows_per_s"] >= TARGET_ROWS_PER_S
        parts.append(f"rows/s>={TARGET_ROWS_PER_S:,.0f} {'ok' if ok else 'MISS'}")
    ok = result["ratio"] <= TARGET_RATIO
    parts.append(f"ratio<={TARGET_RATIO:g} {'ok' if ok else 'MISS'}")
    return ", ".join(parts)


COLUMNS = ("corpus", "rows", "seconds", "rows/s", "peak RSS MiB", "floor s", "ratio", "targets")


def _cells(result: dict) -> list[str]:
    return [
        result["corpus"],
        f"{result['rows']:,}",
        f"{result['seconds']:.1f}",
        f"{result['rows_per_s']:,.0f}",
        f"{result['peak_rss_mib']:,.0f}",
        f"{result['floor_s']:.3f}",
        f"{result['ratio']:.1f}",
        _checks(result),
    ]


def results_tables(results: Sequence[dict]) -> tuple[str, str]:
    """(fixed-width text, Markdown) tables of the results, one row per run."""
    rows = [_cells(r) for r in results]
    align = ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---"]
    return text_table(COLUMNS, rows, right={1, 2, 3, 4, 5, 6}), md_table(COLUMNS, rows, align)


def rss_flatness(results: Sequence[dict]) -> list[dict]:
    """Per corpus: peak RSS at the largest N over the smallest N."""
    verdicts = []
    for corpus in CORPORA:
        runs = sorted((r for r in results if r["corpus"] == corpus), key=lambda r: r["rows"])
        if len(runs) < 2:
            continue
        small, large = runs[0], runs[-1]
        growth = large["peak_rss_mib"] / small["peak_rss_mib"]
        verdicts.append({"corpus": corpus, "from_rows": small["rows"], "to_rows": large["rows"],
                         "growth": growth, "ok": growth <= TARGET_RSS_GROWTH})
    return verdicts


def summary_lines(results: Sequence[dict], flatness: Sequence[dict]) -> list[str]:
    lines = [f"Targets: >= {TARGET_ROWS_PER_S:,.0f} rows/s at {TARGET_ROWS_PER_S_AT:,} word-level rows; "
             f"ratio <= {TARGET_RATIO:g}; peak RSS flat in N (largest N <= {TARGET_RSS_GROWTH:g}x smallest N)."]
    at_target = [r for r in results if r["corpus"] == "words" and r["rows"] >= TARGET_ROWS_PER_S_AT]
    if at_target:
        for r in at_target:
            ok = r["rows_per_s"] >= TARGET_ROWS_PER_S
            lines.append(f"- rows/s, words at {r['rows']:,} rows: {r['rows_per_s']:,.0f} "
                         f"(target >= {TARGET_ROWS_PER_S:,.0f}) {'ok' if ok else 'MISS'}")
    else:
        lines.append(f"- rows/s: not evaluated (no words run at >= {TARGET_ROWS_PER_S_AT:,} rows)")
    worst = max(results, key=lambda r: r["ratio"])
    lines.append(f"- ratio: worst {worst['ratio']:.1f} ({worst['corpus']}, {worst['rows']:,} rows; "
                 f"target <= {TARGET_RATIO:g}) {'ok' if worst['ratio'] <= TARGET_RATIO else 'MISS'}")
    for v in flatness:
        lines.append(f"- peak RSS, {v['corpus']}: {v['from_rows']:,} -> {v['to_rows']:,} rows grows "
                     f"{v['growth']:.2f}x (target <= {TARGET_RSS_GROWTH:g}x) {'ok' if v['ok'] else 'MISS'}")
    if not flatness:
        lines.append("- peak RSS flatness: not evaluated (needs two row counts)")
    return lines


# --------------------------------------------------------------------------- main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS), metavar="N",
                        help="row counts to measure (default: %(default)s)")
    parser.add_argument("--corpus", choices=CORPORA, nargs="+", default=list(CORPORA),
                        help="corpora to measure (default: both)")
    # On 2 cores one in-process worker beats two worker processes plus the coordinating one.
    parser.add_argument("--mode", choices=tuple(MODES), default="in_process",
                        help="DirectRunner running mode: in_process (in_memory, default) or multi_processing")
    parser.add_argument("--workers", type=int, default=2,
                        help="--direct_num_workers in multi_processing mode (default: %(default)s)")
    parser.add_argument("--workdir", default=None,
                        help="where inputs and outputs go (default: a temporary folder, deleted at the end); "
                             "generated inputs are kept and reused when given")
    parser.add_argument("--num-shards", type=int, default=0,
                        help="preprocess.num_shards: 0 (default) writes one file per bundle with no grouping "
                             "step; N > 0 writes exactly N files per split")
    parser.add_argument("--seed", type=int, default=7, help="seed of both corpora (default: %(default)s)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--no-isolate", dest="isolate", action="store_false",
                        help="run every measurement in this process instead of a fresh one each")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds allowed per isolated run (default: %(default)s)")
    parser.add_argument("beam_args", nargs="*", help="extra Beam flags, after --")
    return parser.parse_args(argv)


def beam_args_for(args: argparse.Namespace) -> list[str]:
    """The Beam flags of every run: the running mode, its workers, then the flags given after ``--``."""
    beam_args = list(MODES[args.mode])
    if args.mode == "multi_processing":
        beam_args.append(f"--direct_num_workers={args.workers}")
    return beam_args + list(args.beam_args)


def measure(corpus: str, rows: int, args: argparse.Namespace, beam_args: Sequence[str], workdir: str) -> dict:
    """One row of figures: the job on ``rows`` rows of ``corpus``, then the floor on the same bytes."""
    scratch = os.path.join(workdir, "scratch")
    os.makedirs(scratch, exist_ok=True)
    started = time.perf_counter()
    input_files, config = prepare(corpus, rows, args.seed, workdir, args.num_shards)
    prep_s = time.perf_counter() - started
    if args.isolate:
        run = measure_isolated(config, beam_args, scratch, args.timeout)
    else:
        run = measure_pipeline(config, beam_args)
    try:
        floor = measure_floor(input_files, run.pop("data_dir"), scratch)
    finally:
        shutil.rmtree(config["output_dir"], ignore_errors=True)
    if run["rows_out"]["in"] != rows:
        raise RuntimeError(f"{corpus}: the job read {run['rows_out']['in']} rows, expected {rows}")
    return {"corpus": corpus, "rows": rows, **run, **floor, "rows_per_s": rows / run["seconds"],
            "ratio": run["seconds"] / floor["floor_s"], "input_prep_s": prep_s, "mode": args.mode,
            "beam_args": list(beam_args)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Measures every corpus at every row count, then prints the tables and the targets."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return child_main(argv[1], argv[2])
    args = parse_args(argv)
    setup_logging()
    beam_args = beam_args_for(args)
    env = environment("apache_beam")
    results = []
    started_all = time.perf_counter()
    with work_dir(args.workdir, "seqbeam-bench-") as workdir:
        print(f"seqbeam preprocess benchmark: corpora {', '.join(args.corpus)}; rows {', '.join(map(str, args.rows))}")
        print(f"{environment_line(env)}; beam args: {' '.join(beam_args)}; "
              f"{'fresh process per run' if args.isolate else 'all runs in this process'}; workdir {workdir}")
        try:
            for corpus in args.corpus:
                for rows in args.rows:
                    result = measure(corpus, rows, args, beam_args, workdir)
                    results.append(result)
                    print(f"  {corpus:5s} {rows:>10,} rows: {result['seconds']:7.1f} s, "
                          f"{result['rows_per_s']:>9,.0f} rows/s, peak RSS {result['peak_rss_mib']:>7,.0f} MiB "
                          f"({result['max_processes']} processes), floor {result['floor_s']:.3f} s, "
                          f"ratio {result['ratio']:.1f}  [{_checks(result)}]", flush=True)
        finally:  # a given work dir keeps only the generated inputs
            for name in ("scratch", "runs"):
                shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)

    flatness = rss_flatness(results)
    text, markdown = results_tables(results)
    print(f"\n{text}\n\n" + "\n".join(summary_lines(results, flatness)) + f"\n\n{markdown}")
    print(f"\n(benchmark wall time {time.perf_counter() - started_all:.0f} s)")
    if args.json:
        save_json(args.json, {
            "results": results,
            "rss_flatness": flatness,
            "targets": {"rows_per_s": TARGET_ROWS_PER_S, "rows_per_s_at": TARGET_ROWS_PER_S_AT,
                        "ratio": TARGET_RATIO, "rss_growth": TARGET_RSS_GROWTH},
            "environment": {**env, "isolated": args.isolate, "beam_args": beam_args},
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
