"""Section 1 of benchmarks/infer.py, ``throughput``: rows/s of the inference job per task and size.

1. ``throughput``: rows/s of the inference job per task and corpus size (``--sizes``),
   each size twice on the same input file: WITH length-aware batching (the config's
   ``infer.length_buckets``, the default) and WITHOUT (``infer.length_buckets=[]``:
   RunInference batches rows itself in arrival order). Per run: ``job rows/s`` (the job
   summary's ``rows_per_second``: rows in / seconds from before the pipeline is built to
   the end of the run), ``wall rows/s`` (rows / wall time around ``run_config``, the
   model-card read included), the ``in / out / rejected`` counts, sentences/s for emoji
   (sentences in the ``sentences`` column of the output / job seconds), peak RSS (the
   largest sum, sampled every 0.2 s, of the RSS of this process and its children),
   ``cores used / other`` (CPU seconds of this process and its children / of every other
   process on the machine during the run, over its wall time: a check that nothing else
   competed for the cores), and ``same as bucketed``: the share of rows whose output (emoji: every sentence's label;
   dates: the model output; translation: the text; reber: the decision) is identical in
   the run without buckets (join on id). Corpora:
   - emoji: each line 1-3 sentences drawn from the shipped sentences (a "." added to a
     sentence without final punctuation, so the job cuts the line back into them);
   - dates: ``generate_dates`` with seed ``--seed`` + 1 (training used the config seed),
     noise rate as in ``configs/dates.yaml``; exact match against the truth is reported
     too;
   - translate: new source sentences of the synthetic language (another seed), decoded
     greedily (``infer.decode=greedy``) and by beam search (``infer.decode=beam``,
     ``infer.beam_width=4``); the mean output length in tokens (words and punctuation
     marks of the detokenized text) is printed beside the reference translations'
     length, and the share of outputs cut at the model's target length (no ``<end>``).
     Beam search is slow: sizes above ``--beam-max-rows`` (greedy: ``--translate-max-rows``)
     are skipped and the cap itself is measured instead; the skipped sizes are printed;
   - reber: ``generate_reber`` strings (another seed than training).
   Targets (2 CPU cores): dates >= 5,000 rows/s; emoji V1 >= 50,000 sentences/s, V2 >=
   5,000 sentences/s; translation greedy >= 500 sentences/s, beam 4 >= 150 sentences/s;
   checked on the job rows/s (sentences/s for emoji) of every run.
"""

from __future__ import annotations

import collections
import os
import shutil
from typing import Any, Optional, Sequence

from infer_models import Corpus, Models, infer_config, line_number, line_numbers, make_corpus, read_predictions, run_job
from reporting import mark, md_table, met, num, pct

# Throughput runs: label -> (model key, extra infer overrides).
RUNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "emoji V1": ("emoji_v1", ()),
    "emoji V2": ("emoji_v2", ()),
    "dates": ("dates", ()),
    "translate greedy": ("translate", ("infer.decode=greedy",)),
    "translate beam 4": ("translate", ("infer.decode=beam", "infer.beam_width=4")),
    "reber": ("reber", ()),
}
BATCHING = (("buckets", ()), ("no buckets", ("infer.length_buckets=[]",)))
# Targets on 2 CPU cores: label -> (unit, minimum per second).
TARGETS = {
    "dates": ("rows", 5_000.0),
    "emoji V1": ("sentences", 50_000.0),
    "emoji V2": ("sentences", 5_000.0),
    "translate greedy": ("sentences", 500.0),
    "translate beam 4": ("sentences", 150.0),
}


def planned_sizes(label: str, args) -> tuple[list[int], list[int], Optional[str]]:
    """(sizes to run, sizes skipped, why) for one task."""
    cap, why = None, None
    if label == "translate greedy":
        cap, why = args.translate_max_rows, "--translate-max-rows"
    elif label == "translate beam 4":
        cap, why = args.beam_max_rows, "--beam-max-rows"
    for item in args.max_rows:
        name, _, value = item.rpartition("=")
        if name == label:
            cap, why = int(value), f"--max-rows {item}"
    sizes = sorted(set(args.sizes))
    if cap is None:
        return sizes, [], None
    run = [n for n in sizes if n <= cap]
    skipped = [n for n in sizes if n > cap]
    if skipped and cap not in run:
        run.append(cap)
    return run, skipped, f"over the cap {cap:,} ({why})"


def run_throughput(args, workdir: str, models: Models) -> dict:
    """Section 1: every task at each of its sizes, with length buckets then without; prints the table."""
    print(f"\n## 1. Inference throughput (sizes {', '.join(f'{n:,}' for n in sorted(set(args.sizes)))}; "
          f"each size with the config's length buckets, then without: infer.length_buckets=[])", flush=True)
    results: list[dict] = []
    skipped_notes: list[str] = []
    for label in (label for label in RUNS if label in args.tasks):
        model_key = RUNS[label][0]
        sizes, skipped, why = planned_sizes(label, args)
        if skipped:
            note = f"{label}: sizes {', '.join(f'{n:,}' for n in skipped)} skipped: {why}" + (
                f"; measured at {sizes[-1]:,} instead" if sizes else "")
            skipped_notes.append(note)
            print(f"  {note}", flush=True)
        max_target = (models.get(model_key).get("max_lengths") or {}).get("target")
        for n in sizes:
            if model_key == "translate":
                models.synthetic_language()
            corpus = make_corpus(model_key, n, args.seed + 1, workdir, models.language)
            bucketed = None
            for mode, mode_extra in BATCHING:
                result, table = measure_run(label, mode, mode_extra, corpus, models, workdir, max_target,
                                            args.beam_args)
                if mode == "buckets":
                    bucketed = comparable_output(model_key, table) if table is not None else None
                elif table is not None and bucketed is not None:
                    result["same_as_bucketed"] = same_share(bucketed, comparable_output(model_key, table))
                results.append(result)
                print("  " + progress_line(result), flush=True)
                del table
            if not args.keep:
                os.remove(corpus.path)
    print()
    print(throughput_table(results))
    for note in skipped_notes:
        print(f"skipped: {note}")
    for line in translate_lines(results) + dates_accuracy_lines(results):
        print(line)
    return {"runs": results, "skipped": skipped_notes}


def measure_run(label: str, mode: str, mode_extra: Sequence[str], corpus: Corpus, models: Models, workdir: str,
                max_target: Optional[int], beam_args: Sequence[str] = ()) -> tuple[dict, Any]:
    """One inference job on ``corpus``: (its figures, its prediction table or None); its outputs are deleted."""
    model_key, extra = RUNS[label]
    n = corpus.rows
    output_dir = os.path.join(workdir, "infer", label.replace(" ", "_"), str(n), mode.replace(" ", "_"))
    config = infer_config(model_key, models, corpus.path, output_dir, [*extra, *mode_extra])
    job = run_job(config, beam_args)
    summary = job["summary"]
    rows = summary["rows"]
    table = read_predictions(config)
    shutil.rmtree(output_dir, ignore_errors=True)
    figures = output_figures(model_key, table, corpus, max_target) if table is not None else {}
    job_s = summary["seconds"]
    unit, target = TARGETS.get(label, ("rows", None))
    sentences = figures.get("sentences")
    if unit == "sentences":  # emoji: sentences in the output; translation: one sentence per row
        count = sentences if sentences is not None else rows["in"]
        units_per_s = count / job_s if job_s else None
    else:
        units_per_s = summary["rows_per_second"]
    return {
        "task": label, "model": model_key, "rows": n, "mode": mode,
        "length_buckets": list(config.infer.length_buckets), "max_batch_size": config.infer.max_batch_size,
        "signature": summary["signature"], "counts": rows, "job_seconds": job_s,
        "job_rows_per_second": summary["rows_per_second"], "wall_seconds": job["wall_seconds"],
        "wall_rows_per_second": n / job["wall_seconds"], "peak_rss_mib": job["peak_rss_mib"],
        "processes": job["processes"], "own_cores": job["own_cores"], "rows_by_worker": job["rows_by_worker"],
        "other_cores": job["other_cores"], "steal_cores": job["steal_cores"],
        "input_seconds": corpus.seconds, **figures,
        "sentences_per_second": sentences / job_s if sentences is not None and job_s else None,
        "target_unit": unit, "target_per_second": target, "per_second_for_target": units_per_s,
        "target_met": None if target is None else units_per_s >= target,
    }, table


def same_share(a: tuple, b: tuple) -> Optional[float]:
    """Share of rows (or sentences) whose output is the same in two runs; None when their ids differ."""
    import pyarrow.compute as pc

    (ids_a, out_a), (ids_b, out_b) = a, b
    if not ids_a.equals(ids_b) or len(out_a) != len(out_b):
        return None
    same = pc.sum(pc.cast(pc.equal(out_a, out_b), "int64")).as_py() or 0
    return same / len(out_a) if len(out_a) else None


def progress_line(r: dict) -> str:
    """The line printed as each job ends."""
    counts = r["counts"]
    parts = [f"{r['task']:16s} {r['rows']:>9,} rows, {r['mode']:10s}: job {r['job_seconds']:7.1f} s "
             f"{num(r['job_rows_per_second']):>8} rows/s, wall {r['wall_seconds']:7.1f} s "
             f"{num(r['wall_rows_per_second']):>8} rows/s; in/out/rejected {counts['in']:,}/{counts['out']:,}/"
             f"{counts['rejected']:,}; peak RSS {r['peak_rss_mib']:,.0f} MiB; cores used {r['own_cores']:.2f}, "
             f"by other processes {r['other_cores']:.2f}"]
    if len(r.get("rows_by_worker") or {}) > 1:
        parts.append("rows by worker " + ", ".join(f"{pid}: {rows:,}" for pid, rows in sorted(r["rows_by_worker"].items())))
    if r.get("sentences_per_second") is not None:
        parts.append(f"{r['sentences']:,} sentences, {r['sentences_per_second']:,.0f} sentences/s")
        if r.get("input_sentences") is not None and r["input_sentences"] != r["sentences"]:
            parts.append(f"WARNING: {r['input_sentences']:,} sentences written in the input")
    if r.get("mean_output_tokens") is not None:
        parts.append(f"mean output {r['mean_output_tokens']:.1f} tokens (reference {r['reference_tokens']:.1f}), "
                     f"cut at max length {pct(r.get('cut_at_max_length'), 1)}")
    if r.get("exact_all") is not None:
        parts.append(f"exact clean {pct(r['exact_clean'])}, noisy {pct(r['exact_noisy'])}")
    if "same_as_bucketed" in r:
        parts.append(f"same as bucketed {pct(r['same_as_bucketed'])}")
    if r["target_per_second"] is not None:
        parts.append(f"target {r['target_unit']}/s >= {r['target_per_second']:,.0f}: "
                     f"{mark(r['per_second_for_target'], r['target_per_second'])}")
    return "; ".join(parts)


def throughput_table(results: Sequence[dict]) -> str:
    """The section's Markdown table, one row per job."""
    header = ["task", "rows", "batching", "job s", "job rows/s", "wall s", "wall rows/s", "in", "out", "rejected",
              "sentences/s", "peak RSS MiB", "cores used / other", "same as bucketed", "target", "met"]
    rows = []
    for r in results:
        counts = r["counts"]
        target = "" if r["target_per_second"] is None else f">= {r['target_per_second']:,.0f} {r['target_unit']}/s"
        rows.append([
            r["task"], f"{r['rows']:,}", r["mode"], f"{r['job_seconds']:.1f}", num(r["job_rows_per_second"]),
            f"{r['wall_seconds']:.1f}", num(r["wall_rows_per_second"]), f"{counts['in']:,}", f"{counts['out']:,}",
            f"{counts['rejected']:,}", num(r.get("sentences_per_second")), f"{r['peak_rss_mib']:,.0f}",
            f"{r['own_cores']:.2f} / {r['other_cores']:.2f}",
            pct(r["same_as_bucketed"]) if "same_as_bucketed" in r else "",
            target, "" if r["target_met"] is None else met(r["target_met"]),
        ])
    return md_table(header, rows, ["---", "---:", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:",
                                   "---:", "---:", "---:", "---:", "---", "---"])


def translate_lines(results: Sequence[dict]) -> list[str]:
    """Output lengths of the translation runs, beside the reference translations'."""
    lines = []
    for r in results:
        if r.get("mean_output_tokens") is not None:
            lines.append(f"{r['task']}, {r['rows']:,} rows, {r['mode']}: mean output {r['mean_output_tokens']:.2f} "
                         f"tokens (reference translations {r['reference_tokens']:.2f}), "
                         f"{pct(r.get('cut_at_max_length'), 1)} cut at the model's target length")
    return lines


def dates_accuracy_lines(results: Sequence[dict]) -> list[str]:
    """Exact match of the date runs against the generator's truth."""
    return [f"dates, {r['rows']:,} rows, {r['mode']}: exact match clean {pct(r['exact_clean'])}, noisy "
            f"{pct(r['exact_noisy'])}, all {pct(r['exact_all'])}" for r in results if r.get("exact_all") is not None]


# --------------------------------------------------------------------------- figures


def comparable_output(model_key: str, table):
    """(sorted ids, one comparable array per row or per sentence) of a prediction table."""
    import pyarrow.compute as pc

    table = table.sort_by("id")
    if model_key.startswith("emoji"):
        return table["id"], pc.list_flatten(table["sentences"]).combine_chunks().field("label")
    column = {"dates": "output", "translate": "translation", "reber": "grammatical"}[model_key]
    return table["id"], table[column]


def output_figures(model_key: str, table, corpus: Corpus, max_target: Optional[int]) -> dict:
    """What the prediction table says: sentences (emoji), lengths (translate), exact match (dates)."""
    import pyarrow.compute as pc

    figures: dict[str, Any] = {"rows_read_back": table.num_rows}
    if model_key.startswith("emoji"):
        figures["sentences"] = int(pc.sum(pc.list_value_length(table["sentences"])).as_py() or 0)
        figures["input_sentences"] = corpus.sentences  # as written here: the job should cut lines back into them
    elif model_key == "translate":
        tokens = pc.count_substring_regex(table["translation"], r"[^\W_]+|[^\w\s]")
        figures["mean_output_tokens"] = pc.mean(tokens).as_py()
        figures["reference_tokens"] = corpus.reference_tokens
        if max_target:
            # The decoder writes at most max_target tokens, <end> included: max_target tokens = no <end>.
            figures["cut_at_max_length"] = pc.mean(pc.cast(pc.greater_equal(tokens, max_target),
                                                           "float64")).as_py()
    elif model_key == "dates" and corpus.truth is not None:
        exact = collections.Counter()
        total = collections.Counter()
        numbers = line_numbers(corpus.path)
        for row_id, iso in zip(table["id"].to_pylist(), table["iso_date"].to_pylist()):
            truth, noisy, _ = corpus.truth[line_number(row_id, numbers) - 1]
            total[noisy] += 1
            exact[noisy] += iso == truth
        figures["exact_clean"] = exact[False] / total[False] if total[False] else None
        figures["exact_noisy"] = exact[True] / total[True] if total[True] else None
        figures["exact_all"] = sum(exact.values()) / sum(total.values()) if total else None
    return figures




def headline_rows(throughput: Optional[dict]) -> list[list[str]]:
    """The section's lines of the headline table: each task at its largest size."""
    by_task: dict[str, list[dict]] = collections.defaultdict(list)
    for r in (throughput or {}).get("runs", []):
        by_task[r["task"]].append(r)
    rows = []
    for label, runs in by_task.items():
        largest = max(r["rows"] for r in runs)
        for r in runs:
            if r["rows"] == largest:
                unit, target = r["target_unit"], r["target_per_second"]
                rows.append(["throughput", f"{label}, {largest:,} rows, {r['mode']}",
                             f"{num(r['per_second_for_target'])} {unit}/s",
                             "" if target is None else f">= {target:,.0f} {unit}/s "
                             f"{mark(r['per_second_for_target'], target)}"])
    return rows
