#!/usr/bin/env python
"""Benchmark of the date normalizer on dates as people write them, against python-dateutil and dateparser.

The model is ``--model`` (an exported SavedModel folder), or is trained here with the real
jobs on ``configs/dates.yaml`` (``--set key=value`` overrides; the wall time of each stage
is printed). Three held-out sets are generated with seeds the training never used, both
day orders half and half, and every string the training corpus holds (compared lowercased,
spaces collapsed, with its order) left out:

- ``clean``: the 18 classic formats (noise rate 0);
- ``real-world``: the real-world form families (times, zones, ISO timestamps, compact
  digits, two-digit years, weekdays, abbreviations, ordinals, year-first words,
  log/mail/API timestamps, sentences; ``transforms/date_real_world.py``), noise rate 0;
- ``noisy``: classic and real-world forms as the training mixes them (``real_world_rate``
  of the config), every string with 1-2 noise operations (typos, OCR look-alikes, dropped
  or doubled punctuation and spaces);
- ``hand-written``: ``dates_handwritten.tsv``, strings written by a person in the forms
  of logs, mail, forms, spreadsheets and news, US and European, some in no form the
  generator writes: what the model makes of dates beyond its generator.

Every string goes through the exported model's ``serving_default`` signature with its day
order as ``day_first`` (batches of ``--batch`` sorted by length, as the inference job's
length buckets make them), and through each library setting told the same order
(dateutil ``dayfirst``, dateparser ``DATE_ORDER``); a result is right when its date is the
target (a library's exception or None is wrong). Accuracy per form family and set; the
best dateutil setting on the noisy set is the one the noisy margin is checked against.
Throughput: the exported model on ``--throughput-rows`` strings of the training mix,
``--threads`` threads (default: one per core) calling it side by side in this process,
dates/s; the cores other processes used meanwhile are printed beside it.

Targets: clean >= 99.9 %, real-world >= 98 %, noisy >= 20 points above dateutil,
>= 10,000 dates/s.

    python benchmarks/dates_real_world.py                      # trains configs/dates.yaml, then measures
    python benchmarks/dates_real_world.py --model runs/demo/dates/model/<version> --rows 3000
    python benchmarks/dates_real_world.py --set train.epochs=2 --rows 500 --skip-dateparser   # a quick check
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import time
import warnings
from typing import Any, Callable, Optional, Sequence

from common import load_task, override, preprocess_and_train, setup_logging, work_dir
from reporting import OtherLoad, environment, environment_line, md_table, met, num, pct, save_json

TARGET_CLEAN = 0.999
TARGET_REAL_WORLD = 0.98
TARGET_NOISY_MARGIN = 0.20
TARGET_DATES_PER_S = 10_000.0
SETS = ("clean", "real-world", "noisy", "hand-written")
HANDWRITTEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dates_handwritten.tsv")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The script's flags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="an exported SavedModel folder (default: train one here)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="configs/dates.yaml overrides for the training (repeatable)")
    parser.add_argument("--rows", type=int, default=3000, help="strings per held-out set (default %(default)s)")
    parser.add_argument("--throughput-rows", type=int, default=200_000,
                        help="strings served for the throughput (default %(default)s)")
    parser.add_argument("--batch", type=int, default=2048, help="strings per model call (default %(default)s, "
                        "configs/dates.yaml's infer.max_batch_size)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads calling the model in the throughput run (default: the cores, %(default)s)")
    parser.add_argument("--seed", type=int, default=1000, help="first seed of the held-out sets (default %(default)s)")
    parser.add_argument("--skip-dateparser", action="store_true", help="without dateparser (slow)")
    parser.add_argument("--misses", type=int, default=12, help="wrong answers shown per set (default %(default)s)")
    parser.add_argument("--work-dir", default=None, help="where the model is trained (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--verbose", action="store_true", help="show the jobs' INFO logs")
    args = parser.parse_args(argv)
    for name in ("rows", "throughput_rows", "batch", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


# --------------------------------------------------------------------------- the model


def trained_model(args, workdir: str) -> tuple[str, Any, dict]:
    """(model path, config, training facts): ``--model``, or a model trained here on configs/dates.yaml."""
    config = load_task("dates.yaml", [override("output_dir", os.path.join(workdir, "out")), *args.overrides])
    if args.model:
        return args.model, config, {}
    print(f"training configs/dates.yaml ({config.data.generator.num_rows:,} rows, {config.train.epochs} epochs max, "
          f"overrides {args.overrides or 'none'}) ...", flush=True)
    with OtherLoad() as load:
        run = preprocess_and_train(config, export=True)
    summary = run["summary"]
    facts = {"stages_s": run["stages"], "epochs_run": summary.get("epochs_run"),
             "metrics": summary.get("metrics"), "other_cores": load.other_cores}
    total = sum(run["stages"].values())
    print(f"  preprocess {run['stages']['preprocess']:.0f} s, train {run['stages']['train']:.0f} s "
          f"({facts['epochs_run']} epochs), export {run['stages']['export']:.0f} s: {total / 60:.1f} min "
          f"(cores used by other processes meanwhile: {load.other_cores:.2f})", flush=True)
    return summary["model_path"], config, facts


def load_model(path: str):
    """The exported model's serving signature (a date model takes ``text`` and ``day_first``)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)

    module = tf.saved_model.load(path)
    return module, module.signatures["serving_default"]


def predict(signature, examples: Sequence, batch: int) -> list[str]:
    """The model's text for each example, its day order as ``day_first``, in length-sorted batches."""
    import tensorflow as tf

    order = sorted(range(len(examples)), key=lambda i: len(examples[i].raw))
    out: list[Optional[str]] = [None] * len(examples)
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        result = signature(text=tf.constant([examples[i].raw for i in chunk]),
                           day_first=tf.constant([examples[i].day_first for i in chunk]))
        for i, text in zip(chunk, result["text"].numpy().tolist()):
            out[i] = text.decode("utf-8")
    return out


# --------------------------------------------------------------------------- the held-out sets


def training_strings(config) -> set[tuple[str, bool]]:
    """The training corpus's strings (normalised) with their order: held-out sets leave them out."""
    from seqbeam.transforms.date_generator import normalise
    from seqbeam.transforms.synthetic import generate_examples, num_shards

    gen = config.data.generator
    return {(normalise(e.raw), e.day_first) for shard in range(num_shards(gen)) for _, e in generate_examples(gen, shard)}


def handwritten(path: str = HANDWRITTEN) -> list:
    """The hand-written strings (``text<TAB>day_first<TAB>iso`` after a header; ``#`` lines are comments)."""
    from seqbeam.transforms.date_generator import DateExample

    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]
    return [DateExample(raw=text, iso=iso, format="hand-written", noisy=False, day_first=day_first == "true")
            for text, day_first, iso in (line.split("\t") for line in lines[1:])]


def held_out_sets(args, config, seen: set) -> dict[str, list]:
    """The clean, real-world and noisy sets, ``--rows`` strings each, none of them a training string,
    and the hand-written strings of ``dates_handwritten.tsv``."""
    from seqbeam.transforms.date_generator import generate_dates, normalise

    settings = {"clean": (0.0, 0.0), "real-world": (0.0, 1.0), "noisy": (1.0, config.data.generator.real_world_rate)}
    sets = {}
    for k, (name, (noise, real_world)) in enumerate(settings.items()):
        rows, dropped = [], 0
        for example in generate_dates(4 * args.rows, args.seed + k, day_first=None, noise_rate=noise,
                                      real_world_rate=real_world):
            if (normalise(example.raw), example.day_first) in seen:
                dropped += 1
                continue
            rows.append(example)
            if len(rows) == args.rows:
                break
        sets[name] = rows
        print(f"  {name}: {len(rows):,} strings ({dropped} left out: in the training corpus)", flush=True)
    sets["hand-written"] = handwritten()
    print(f"  hand-written: {len(sets['hand-written'])} strings ({os.path.basename(HANDWRITTEN)})", flush=True)
    return sets


# --------------------------------------------------------------------------- the libraries


def library_settings(with_dateparser: bool) -> dict[str, Callable[[str, bool], Any]]:
    """label -> parse(text, day_first): every library setting measured, each told the row's order."""
    from dateutil import parser as dateutil_parser

    default = datetime.datetime(2000, 1, 1)
    settings = {
        "dateutil": lambda s, day_first: dateutil_parser.parse(s, dayfirst=day_first),
        "dateutil fuzzy": lambda s, day_first: dateutil_parser.parse(s, dayfirst=day_first, fuzzy=True,
                                                                     default=default),
    }
    if with_dateparser:
        import dateparser

        def parse(s: str, day_first: bool):
            return dateparser.parse(s, languages=["en"], settings={
                "DATE_ORDER": "DMY" if day_first else "MDY", "PREFER_DAY_OF_MONTH": "first",
                "RETURN_AS_TIMEZONE_AWARE": False})

        settings["dateparser"] = parse
    return settings


def library_answers(parse: Callable[[str, bool], Any], examples: Sequence) -> list[Optional[str]]:
    """The library's ISO date of each example, None where it raised or found none."""
    answers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for example in examples:
            try:
                result = parse(example.raw, example.day_first)
                answers.append(None if result is None else result.date().isoformat())
            except Exception:  # noqa: BLE001 - any failure is a wrong answer
                answers.append(None)
    return answers


# --------------------------------------------------------------------------- scoring and the report


def family(example) -> str:
    """The family a row is reported under: its real-world family, or "classic" (the 18 formats)."""
    from seqbeam.transforms.date_generator import FORMATS

    return "classic" if example.format in FORMATS else example.format


def score(answers: Sequence[Optional[str]], examples: Sequence) -> dict:
    """Exact match overall, per family and per day order."""
    by_family, by_order = collections.defaultdict(list), collections.defaultdict(list)
    for answer, example in zip(answers, examples):
        ok = answer == example.iso
        by_family[family(example)].append(ok)
        by_order["day_first" if example.day_first else "month_first"].append(ok)
    share = lambda oks: sum(oks) / len(oks) if oks else None  # noqa: E731
    return {"exact": share([a == e.iso for a, e in zip(answers, examples)]),
            "families": {f: {"n": len(oks), "exact": share(oks)} for f, oks in sorted(by_family.items())},
            "orders": {o: share(oks) for o, oks in sorted(by_order.items())}}


def report(results: dict, sets: dict, methods: Sequence[str]) -> None:
    """The per-family table of every set and method."""
    header = ["set", "family", "n", *methods]
    rows = []
    for name in SETS:
        families = results[name]["seqbeam"]["families"]
        for fam in families:
            rows.append([name, fam, str(families[fam]["n"])] +
                        [pct(results[name][m]["families"][fam]["exact"], 1) for m in methods])
        rows.append([name, "**all**", str(len(sets[name]))] + [f"**{pct(results[name][m]['exact'], 2)}**"
                                                              for m in methods])
        rows.append([name, "by order (month first / day first)", ""] + [
            " / ".join(pct(results[name][m]["orders"].get(o), 1) for o in ("month_first", "day_first"))
            for m in methods])
    print()
    print(md_table(header, rows, ["---", "---", "---:"] + ["---:"] * len(methods)))


def throughput(signature, args, config) -> dict:
    """Dates/s of the exported model on strings of the training mix: length-sorted batches, ``--threads``
    threads calling the signature side by side (TensorFlow runs them on the cores in parallel), this process."""
    import queue
    import threading

    from seqbeam.transforms.date_generator import generate_dates

    gen = config.data.generator
    examples = sorted(generate_dates(args.throughput_rows, args.seed + 10, day_first=None,
                                     noise_rate=gen.noise_rate, real_world_rate=gen.real_world_rate),
                      key=lambda e: len(e.raw))
    batches = [examples[start:start + args.batch] for start in range(0, len(examples), args.batch)]
    for batch in batches[::max(1, len(batches) // 8)]:
        predict(signature, batch, args.batch)  # traced and warm for every length
    work: queue.Queue = queue.Queue()
    for batch in batches:
        work.put(batch)

    def serve_batches() -> None:
        while True:
            try:
                batch = work.get_nowait()
            except queue.Empty:
                return
            predict(signature, batch, args.batch)

    with OtherLoad() as load:
        started = time.perf_counter()
        threads = [threading.Thread(target=serve_batches) for _ in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    mean_chars = sum(len(e.raw) for e in examples) / len(examples)
    result = {"rows": len(examples), "threads": args.threads, "seconds": seconds,
              "dates_per_s": len(examples) / seconds, "mean_chars": mean_chars, "own_cores": load.own_cores,
              "other_cores": load.other_cores, "dates_per_core_s": len(examples) / seconds / max(load.own_cores, 1e-9)}
    print(f"\nthroughput: {len(examples):,} strings (mean {mean_chars:.1f} characters) in {seconds:.1f} s, "
          f"{args.threads} thread(s): {num(result['dates_per_s'])} dates/s, {num(result['dates_per_core_s'])} per core "
          f"used (cores used: this process {load.own_cores:.2f}, other processes {load.other_cores:.2f})", flush=True)
    return result


def checks(results: dict, speed: dict) -> dict:
    """The targets, against the measured figures."""
    noisy = results["noisy"]
    dateutil = max((m for m in noisy if m.startswith("dateutil")), key=lambda m: noisy[m]["exact"])
    margin = noisy["seqbeam"]["exact"] - noisy[dateutil]["exact"]
    found = {
        "clean": (results["clean"]["seqbeam"]["exact"], TARGET_CLEAN),
        "real_world": (results["real-world"]["seqbeam"]["exact"], TARGET_REAL_WORLD),
        f"noisy_margin_over_{dateutil.replace(' ', '_')}": (margin, TARGET_NOISY_MARGIN),
        "dates_per_s": (speed["dates_per_s"], TARGET_DATES_PER_S),
    }
    out = {name: {"value": value, "target": target, "met": value >= target} for name, (value, target) in found.items()}
    print("\ntargets: " + "; ".join(
        f"{name} {num(c['value']) if name == 'dates_per_s' else pct(c['value'])} >= "
        f"{num(c['target']) if name == 'dates_per_s' else pct(c['target'], 1)}: {met(c['met'])}"
        for name, c in out.items()))
    return out


def run(args) -> dict:
    """Trains or loads the model, scores it and the libraries on the three sets, measures its speed."""
    env = environment("tensorflow", "dateutil", *(() if args.skip_dateparser else ("dateparser",)))
    print(environment_line(env), flush=True)
    with work_dir(args.work_dir, "dates-real-world-", keep=args.keep) as workdir:
        path, config, training = trained_model(args, workdir)
        print(f"model {path}; held-out sets (seeds {args.seed}..{args.seed + 2}):", flush=True)
        sets = held_out_sets(args, config, training_strings(config))
        _, signature = load_model(path)
        answers = {name: {"seqbeam": predict(signature, rows, args.batch)} for name, rows in sets.items()}
        for label, parse in library_settings(not args.skip_dateparser).items():
            started = time.perf_counter()
            for name, rows in sets.items():
                answers[name][label] = library_answers(parse, rows)
            print(f"  {label}: {time.perf_counter() - started:.0f} s", flush=True)
        methods = list(answers["clean"])
        results = {name: {m: score(answers[name][m], sets[name]) for m in methods} for name in SETS}
        report(results, sets, methods)
        for name in SETS:
            misses = [(e.raw, e.day_first, e.iso, a) for e, a in zip(sets[name], answers[name]["seqbeam"])
                      if a != e.iso][:args.misses]
            if misses:
                print(f"  seqbeam misses, {name} (raw, day_first, target, answer): " + "; ".join(map(repr, misses)))
        speed = throughput(signature, args, config)
        return {"environment": env, "model": path, "training": training, "rows_per_set": args.rows,
                "results": results, "throughput": speed, "checks": checks(results, speed)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the benchmark; 0 when it ran (targets missed are reported, not failed)."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    results = run(args)
    if args.json:
        save_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
