"""Sections 2 and 4 of benchmarks/train.py: what the trained models get right (3, the emoji k-fold: emoji_kfold.py).

2. ``dates``: the date normalizer end to end: generate + preprocess ``--dates-rows`` dates
   (``configs/dates.yaml`` settings: seed, shards, noise rate, model, early stopping), train
   ``--dates-epochs`` epochs, export, regenerate the held-out test split's raw strings from
   the generator seed (as ``tests/test_dates_model.py`` does) and serve them through the
   SavedModel, each string with its day order. Exact match per input form (every classic
   format and real-world family of ``transforms.date_generator.ALL_FORMS``), clean and noisy
   apart, and overall, with the wall
   time of every stage. Target: >= 99.9 % exact match on clean inputs.
4. ``names``: the char LM trained on ``--names-file`` (``configs/names.yaml``, ``data.path``
   overridden), exported, then ``--samples`` names sampled through the SavedModel from empty
   prompts: share of novel names (not in the training file, case-insensitive), mean length
   vs the training list's, 20 examples.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Optional

from common import load_serving, load_task, override, preprocess_and_train, serve, stopwatch
from reporting import mark, pct, text_table

TARGET_DATES_CLEAN = 0.999
NAME_EXAMPLES = 20


# --------------------------------------------------------------------------- 2. dates


def held_out_dates(config, rejected: set) -> list:
    """The test split's generated examples, regenerated from the seed (ids ``dates-<seed>:<i>``)."""
    from seqbeam.transforms.synthetic import generate_examples, num_shards
    from seqbeam.transforms.validate import assign_split

    gen = config.data.generator
    return [example for shard in range(num_shards(gen)) for row_id, example in generate_examples(gen, shard)
            if row_id not in rejected and assign_split(row_id, config.preprocess.splits) == "test"]


def rejected_ids(config) -> set:
    """Ids of the rows the preprocessing job rejected (its ``rejected-*.jsonl`` files)."""
    import glob

    from seqbeam.pipelines.layout import preprocess_rejected_dir

    ids = set()
    for path in glob.glob(os.path.join(preprocess_rejected_dir(config), "rejected-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    ids.add(json.loads(line)["id"])
    return ids


def run_dates(args, workdir: str) -> dict:
    """Section 2: trains the date normalizer, serves its held-out split, exact match per format."""
    from seqbeam.transforms.date_generator import ALL_FORMS as FORMATS

    print(f"\n## 2. Date normalizer end to end ({args.dates_rows:,} generated dates, configs/dates.yaml settings, "
          f"{args.dates_epochs} epoch(s); 1 worker)", flush=True)
    config = load_task("dates.yaml", [override("output_dir", os.path.join(workdir, "dates")),
                                      f"data.generator.num_rows={args.dates_rows}",
                                      f"train.epochs={args.dates_epochs}"])
    run = preprocess_and_train(config, export=True)
    stages = {"generate + preprocess": run["stages"]["preprocess"], "train (incl. evaluation)": run["stages"]["train"],
              "export": run["stages"]["export"]}
    summary, metadata = run["summary"], run["metadata"]
    print(f"  rows: {metadata['rows']}; trained {summary['epochs_run']} epoch(s), "
          f"{summary['examples_per_second']:,.1f} examples/s; test metrics {summary['metrics'].get('test')}",
          flush=True)

    with stopwatch(stages, "regenerate held-out"):
        examples = held_out_dates(config, rejected_ids(config))
    if len(examples) != metadata["rows"]["test"]:
        print(f"  WARNING: regenerated {len(examples)} held-out dates, the job wrote {metadata['rows']['test']} "
              f"test rows", flush=True)
    with stopwatch(stages, "load SavedModel"):
        serving = load_serving(summary["model_path"])
    with stopwatch(stages, "serve held-out"):
        predicted = serve(serving, [e.raw for e in examples], "text", day_first=[e.day_first for e in examples])
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
    rows = [[f["format"], str(f["clean_n"]), pct(f["clean"]), mark(f["clean"], TARGET_DATES_CLEAN),
             str(f["noisy_n"]), pct(f["noisy"])] for f in per_format]
    rows.append(["ALL", str(overall["clean_n"]), pct(overall["clean"]), mark(overall["clean"], TARGET_DATES_CLEAN),
                 str(overall["noisy_n"]), pct(overall["noisy"])])
    print(text_table(["format", "clean n", "clean exact", f"clean >= {100 * TARGET_DATES_CLEAN:g} %",
                      "noisy n", "noisy exact"], rows, right={1, 2, 4, 5}))
    print(f"\n  exact match: clean {pct(overall['clean'])} ({overall['clean_n']:,}; target >= "
          f"{100 * TARGET_DATES_CLEAN:g} %: {mark(overall['clean'], TARGET_DATES_CLEAN)}), "
          f"noisy {pct(overall['noisy'])} ({overall['noisy_n']:,}), all {pct(overall['all'])} ({overall['all_n']:,})")
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


# --------------------------------------------------------------------------- 4. names


def run_names(args, workdir: str) -> Optional[dict]:
    """Section 4: names sampled from the char LM, novelty and length (None when the names file is missing)."""
    print(f"\n## 4. Char LM on {args.names_file}: {args.samples} names sampled through the SavedModel", flush=True)
    if not os.path.isfile(args.names_file):
        print(f"  SKIPPED: {args.names_file} not found")
        return None
    with open(args.names_file, encoding="utf-8-sig") as f:
        training = [line.strip() for line in f if line.strip()]
    known = {name.lower() for name in training}
    overrides = [override("output_dir", os.path.join(workdir, "names")),
                 override("data.path", os.path.abspath(args.names_file))]
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
    print(f"  novel: {pct(result['novel_share'], 1)} of {len(samples)} samples (not in the training file, "
          f"case-insensitive; {result['empty']} empty)")
    print(f"  mean length: {result['mean_length']:.2f} characters (training list {result['training_mean_length']:.2f})")
    print(f"  sampling: {sample_s:.2f} s for {len(samples)} names (SavedModel load included)")
    print("  examples: " + ", ".join(s or "''" for s in result["examples"]), flush=True)
    return result


# --------------------------------------------------------------------------- report


def headline_rows(results: dict) -> list[list[str]]:
    """The lines of sections 2 and 4 in the headline table."""
    rows = []
    dates = results.get("dates")
    if dates:
        o = dates["overall"]
        rows.append(["dates", f"exact match, clean ({o['clean_n']:,})", pct(o["clean"]),
                     f">= {100 * TARGET_DATES_CLEAN:g} % {mark(o['clean'], TARGET_DATES_CLEAN)}"])
        worst = min((f for f in dates["per_format"] if f["clean"] is not None), key=lambda f: f["clean"], default=None)
        if worst:
            rows.append(["dates", f"worst clean format ({worst['format']})", pct(worst["clean"]),
                         f">= {100 * TARGET_DATES_CLEAN:g} % {mark(worst['clean'], TARGET_DATES_CLEAN)}"])
        rows.append(["dates", f"exact match, noisy ({o['noisy_n']:,})", pct(o["noisy"]), ""])
        rows.append(["dates", f"exact match, all ({o['all_n']:,})", pct(o["all"]), ""])
        stages = dates["stages_seconds"]
        rows.append(["dates", f"wall time ({dates['rows']:,} rows, {dates['epochs_run']} epochs)",
                     f"{sum(stages.values()):.0f} s",
                     ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())])
    names = results.get("names")
    if names:
        rows.append(["names", f"novel names ({names['samples']} samples)", pct(names["novel_share"], 1), ""])
        rows.append(["names", "mean length (chars)", f"{names['mean_length']:.2f}",
                     f"training list {names['training_mean_length']:.2f}"])
    return rows




def _rate(correct: int, total: int) -> Optional[float]:
    return correct / total if total else None
