#!/usr/bin/env python
"""seqbeam preprocess side by side with a tf.Transform pipeline doing the same work.

Both jobs read the words corpus of ``benchmarks/preprocess.py`` (4 CSV files, max_length
32, a 20,000-entry vocabulary, ``num_shards: 0``) on the same Beam runner and write gzip
TFRecords of the same features (``tokens``, ``length``, ``label``, ``id``):

* seqbeam: ``seqbeam.pipelines.preprocess.run_config`` (what ``seqbeam preprocess`` runs);
* tf.Transform: the same readers, ids, validation and split (seqbeam's ``ReadValidBatches``),
  rows split before analysis, then a ``preprocessing_fn`` of seqbeam's tokenizer ops ->
  ``tft.compute_and_apply_vocabulary(top_k=max_size - 4, reserved_tokens=<pad> <unk> <start>
  <end>, default_value=1)`` -> ``tf_text.pad_model_inputs``; ``AnalyzeAndTransformDataset``
  on train, ``TransformDataset`` on valid and test.

Runs alternate (seqbeam, tft, seqbeam, tft, ...), each in a fresh Python process. Printed
per run and as medians: wall (the child process, imports included), job time (building and
running the pipeline), rows/s (rows / job time), peak RSS (the process tree, sampled every
0.2 s); then the ratios tft / seqbeam, the floor of ``benchmarks/preprocess.py`` (read the
input bytes, gzip the job's output) and job / floor. The last outputs of both are compared
example by example, by id, as token strings (each job's ids read through its own vocabulary
file): the split, label and length of every example must agree; token positions may differ
only where the two break the top-K vocabulary's count ties differently, and are counted.

Needs tensorflow-transform (``pip install -e ".[bench]"``).

    python benchmarks/vs_tft.py                       # 1e6 rows, 2 runs of each
    python benchmarks/vs_tft.py --rows 200000 --repeats 1 --workdir /tmp/bench

Targets (printed): seqbeam >= 2.0x tf.Transform (wall), >= 40,000 rows/s, peak RSS no
higher than tf.Transform's; job time within 10x of the floor.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Optional, Sequence

from common import setup_logging, work_dir
from preprocess import MODES, measure_floor, measure_pipeline, prepare
from reporting import MIB, OtherLoad, TreeRssSampler, environment, environment_line, md_table, save_json

TARGET_SPEEDUP = 2.0  # tft wall / seqbeam wall
TARGET_ROWS_PER_S = 40_000.0  # seqbeam, in-process
TARGET_FLOOR_RATIO = 10.0  # seqbeam job time / floor
JOBS = ("seqbeam", "tft")


# --------------------------------------------------------------------------- the tf.Transform job


def run_tft(config_dict: dict, beam_args: Sequence[str]) -> dict:
    """The tf.Transform pipeline on the config's corpus; returns its job time and output folder."""
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_text as tf_text
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from seqbeam.configs.schema import config_from_dict
    from seqbeam.pipelines.options import pipeline_options
    from seqbeam.text.tokenizer import TextTokenizer
    from seqbeam.text.vocabulary import RESERVED_TOKENS, UNK_ID
    from seqbeam.transforms.records import SPLITS
    from seqbeam.transforms.rows import ReadValidBatches

    config = config_from_dict(config_dict, source="benchmarks/vs_tft.py")
    pre = config.preprocess
    out_dir = os.path.join(config.output_dir, "tft")
    tokenizer = TextTokenizer.from_config(pre.tokenizer)
    top_k = pre.source_vocab.max_size - len(RESERVED_TOKENS)
    raw_metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({
        "text": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64),
        "id": tf.io.FixedLenFeature([], tf.string)}))

    def preprocessing_fn(inputs):
        tokens = tokenizer.tokenize(inputs["text"])
        ids = tft.compute_and_apply_vocabulary(tokens, top_k=top_k, reserved_tokens=list(RESERVED_TOKENS),
                                               default_value=UNK_ID, vocab_filename="tokens")
        padded, _ = tf_text.pad_model_inputs(ids, max_seq_length=pre.max_length, pad_value=0)
        length = tf.minimum(ids.row_lengths(), pre.max_length)
        return {"tokens": padded, "length": length, "label": inputs["label"], "id": inputs["id"]}

    def instances(batch, split):
        return [{"text": t.encode("utf-8"), "label": lb, "id": i.encode("utf-8")}
                for i, t, lb, s in zip(batch.ids, batch.texts, batch.labels, batch.splits) if s == split]

    started = time.perf_counter()
    with beam.Pipeline(options=pipeline_options(list(beam_args), True)) as p:
        with tft_beam.Context(temp_dir=os.path.join(out_dir, "tmp")):
            batches = (p | "Read" >> ReadValidBatches(config))["batches"]
            data = {split: batches | f"{split}Rows" >> beam.FlatMap(instances, split) for split in SPLITS}
            (train, transformed_metadata), transform_fn = (
                (data["train"], raw_metadata) | "AnalyzeAndTransform" >> tft_beam.AnalyzeAndTransformDataset(
                    preprocessing_fn, output_record_batches=False))
            transformed = {"train": train}
            for split in ("valid", "test"):
                transformed[split], _ = (((data[split], raw_metadata), transform_fn)
                                         | f"Transform{split}" >> tft_beam.TransformDataset())
            _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(os.path.join(out_dir, "transform_fn"))
            for split, rows in transformed.items():
                coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
                _ = (rows | f"Encode{split}" >> beam.Map(coder.encode)
                     | f"Write{split}" >> beam.io.WriteToTFRecord(os.path.join(out_dir, split),
                                                                file_name_suffix=".tfrecord.gz"))
    return {"job_s": time.perf_counter() - started, "out_dir": out_dir,
            "vocab_file": tft.TFTransformOutput(os.path.join(out_dir, "transform_fn")).vocabulary_file_by_name("tokens")}


# --------------------------------------------------------------------------- one run per process


def child_main(spec_path: str, result_path: str) -> int:
    """One run of one job (``--child``), its figures written as JSON."""
    setup_logging()
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    if spec["job"] == "seqbeam":
        result = measure_pipeline(spec["config"], spec["beam_args"])
        result = {"job_s": result["seconds"], "peak_rss_mib": result["peak_rss_mib"],
                  "out_dir": result["data_dir"], "vocab_file": os.path.join(result["data_dir"], "vocab", "tokens.txt")}
    else:
        with TreeRssSampler() as sampler:
            result = run_tft(spec["config"], spec["beam_args"])
        result["peak_rss_mib"] = sampler.peak / MIB
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    sys.stdout.flush()
    # tensorflow-transform 1.21 + tensorflow 2.21 segfault while the interpreter tears down (after
    # the job, its outputs written): end the process without the teardown.
    os._exit(0)


def measure(job: str, config: dict, beam_args: Sequence[str], scratch: str, timeout: float) -> dict:
    """Runs one job in a fresh Python process; adds its wall time and the other load on the machine."""
    spec_path, result_path = os.path.join(scratch, "spec.json"), os.path.join(scratch, "result.json")
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump({"job": job, "config": config, "beam_args": list(beam_args)}, f)
    if os.path.exists(result_path):
        os.remove(result_path)
    log_path = os.path.join(scratch, f"{job}.log")
    with open(log_path, "wb") as log, OtherLoad() as load:
        started = time.perf_counter()
        code = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", spec_path, result_path],
                              stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
        wall = time.perf_counter() - started
    if code != 0 or not os.path.exists(result_path):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            raise RuntimeError(f"{job} run failed ({code}):\n{f.read()[-6000:]}")
    with open(result_path, encoding="utf-8") as f:
        return {**json.load(f), "wall_s": wall, "other_cores": load.other_cores}


# --------------------------------------------------------------------------- same examples?


def read_examples(out_dir: str, vocab_file: str, pattern: str, width: int) -> dict:
    """id -> (split, label, length, tokens as strings) of every Example under ``out_dir`` (``width`` tokens each)."""
    import numpy as np
    import tensorflow as tf

    with open(vocab_file, encoding="utf-8") as f:
        vocabulary = np.array([line.rstrip("\n") for line in f], dtype=object)
    spec = {"tokens": tf.io.FixedLenFeature([width], tf.int64), "length": tf.io.FixedLenFeature([1], tf.int64),
            "label": tf.io.FixedLenFeature([1], tf.int64), "id": tf.io.FixedLenFeature([], tf.string)}
    examples = {}
    for path in sorted(glob.glob(os.path.join(out_dir, pattern))):
        split = os.path.basename(path).split("-")[0]
        dataset = tf.data.TFRecordDataset(path, compression_type="GZIP").batch(4096).map(
            lambda records: tf.io.parse_example(records, spec))
        for batch in dataset.as_numpy_iterator():
            for row_id, label, length, ids in zip(batch["id"], batch["label"][:, 0], batch["length"][:, 0],
                                                  batch["tokens"]):
                examples[row_id.decode("utf-8")] = (split, int(label), int(length), vocabulary[ids[:length]].tolist())
    return examples


def compare_outputs(seqbeam: dict, tft: dict, width: int) -> dict:
    """Example by example: equal splits, labels and lengths; token positions that differ."""
    ours = read_examples(seqbeam["out_dir"], seqbeam["vocab_file"], "*.tfrecord.gz", width)
    theirs = read_examples(tft["out_dir"], tft["vocab_file"], "*.tfrecord.gz", width)
    if set(ours) != set(theirs):
        raise RuntimeError(f"the outputs hold different ids: {len(set(ours) ^ set(theirs))} apart")
    differing_tokens = differing_examples = 0
    for row_id, (split, label, length, tokens) in ours.items():
        other = theirs[row_id]
        if (split, label, length) != other[:3]:
            raise RuntimeError(f"example {row_id}: seqbeam {(split, label, length)}, tf.Transform {other[:3]}")
        diff = sum(a != b for a, b in zip(tokens, other[3]))
        differing_tokens += diff
        differing_examples += diff > 0
    return {"examples": len(ours), "differing_examples": differing_examples, "differing_tokens": differing_tokens}


# --------------------------------------------------------------------------- main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="word rows (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each job, alternating (default: %(default)s)")
    parser.add_argument("--mode", choices=tuple(MODES), default="in_process", help="DirectRunner running mode")
    parser.add_argument("--workdir", default=None, help="inputs and outputs (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    return parser.parse_args(argv)


def report(runs: dict, floor: dict, same: dict, rows: int) -> list[str]:
    """The medians, ratios and targets, as lines."""
    med = {job: {key: statistics.median(r[key] for r in runs[job]) for key in ("wall_s", "job_s", "peak_rss_mib")}
           for job in JOBS}
    header = ("job", "wall s", "job s", "rows/s (job)", "peak RSS MiB")
    table = [[job, f"{m['wall_s']:.1f}", f"{m['job_s']:.1f}", f"{rows / m['job_s']:,.0f}", f"{m['peak_rss_mib']:,.0f}"]
             for job, m in med.items()]
    ours, theirs = med["seqbeam"], med["tft"]
    speedup, job_speedup = theirs["wall_s"] / ours["wall_s"], theirs["job_s"] / ours["job_s"]
    memory = ours["peak_rss_mib"] / theirs["peak_rss_mib"]
    rate, floor_ratio = rows / ours["job_s"], ours["job_s"] / floor["floor_s"]
    return [md_table(header, table, ["---", "---:", "---:", "---:", "---:"]), "",
            f"- seqbeam vs tf.Transform: {speedup:.2f}x faster (wall), {job_speedup:.2f}x (job time), "
            f"{memory:.2f}x the peak memory; target >= {TARGET_SPEEDUP:g}x wall "
            f"{'ok' if speedup >= TARGET_SPEEDUP else 'MISS'}, memory {'ok' if memory <= 1 else 'MISS'}",
            f"- seqbeam rows/s (job time): {rate:,.0f}; target >= {TARGET_ROWS_PER_S:,.0f} "
            f"{'ok' if rate >= TARGET_ROWS_PER_S else 'MISS'}",
            f"- floor {floor['floor_s']:.2f} s; seqbeam job / floor {floor_ratio:.1f}; target <= "
            f"{TARGET_FLOOR_RATIO:g} {'ok' if floor_ratio <= TARGET_FLOOR_RATIO else 'MISS'}",
            f"- same examples: {same['examples']:,} by id with equal split, label and length; "
            f"{same['differing_examples']:,} examples / {same['differing_tokens']:,} token positions differ "
            f"(top-K ties broken differently)"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Alternating runs of both jobs, the floor, the comparison of the outputs, the report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return child_main(argv[1], argv[2])
    args = parse_args(argv)
    setup_logging()
    beam_args = list(MODES[args.mode])
    env = environment("apache_beam", "tensorflow_transform")
    with work_dir(args.workdir, "seqbeam-vs-tft-") as workdir:
        scratch = os.path.join(workdir, "scratch")
        os.makedirs(scratch, exist_ok=True)
        input_files, config = prepare("words", args.rows, args.seed, workdir, num_shards=0)
        print(f"seqbeam vs tf.Transform: {args.rows:,} word rows, {args.repeats} runs each, alternating; "
              f"{environment_line(env)}; beam args {' '.join(beam_args)}", flush=True)
        runs: dict = {job: [] for job in JOBS}
        try:
            for repeat in range(args.repeats):
                for job in JOBS:
                    last = repeat == args.repeats - 1
                    if not last:
                        shutil.rmtree(config["output_dir"], ignore_errors=True)
                    result = measure(job, config, beam_args, scratch, args.timeout)
                    runs[job].append(result)
                    print(f"  {job:8s} run {repeat + 1}: wall {result['wall_s']:6.1f} s, job {result['job_s']:6.1f} s, "
                          f"{args.rows / result['job_s']:>8,.0f} rows/s, peak RSS {result['peak_rss_mib']:>6,.0f} MiB, "
                          f"other load {result['other_cores']:.2f} cores", flush=True)
            floor = measure_floor(input_files, runs["seqbeam"][-1]["out_dir"], scratch)
            same = compare_outputs(runs["seqbeam"][-1], runs["tft"][-1], config["preprocess"]["max_length"])
        finally:
            shutil.rmtree(config["output_dir"], ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
    lines = report(runs, floor, same, args.rows)
    print("\n" + "\n".join(lines))
    if args.json:
        save_json(args.json, {"rows": args.rows, "runs": runs, "floor": floor, "same": same, "environment": env,
                              "beam_args": beam_args})
    return 0


if __name__ == "__main__":
    sys.exit(main())
