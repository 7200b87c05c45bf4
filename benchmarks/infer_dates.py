"""Section 2 of benchmarks/infer.py, ``dates``: the date normalizer against python-dateutil and dateparser.

2. ``dates``: on the same inputs, in the same run, seqbeam vs ``python-dateutil`` and
   ``dateparser``: ``--dates-compare-rows`` clean dates (noise rate 0) and as many noisy
   ones (noise rate 1), seeds ``--seed`` + 2 and + 3, in one text file served by one
   inference job (default length buckets). seqbeam is exact when ``iso_date`` equals the
   truth (join on id); a library when ``result.date().isoformat()`` equals it (an
   exception or None is wrong). Libraries run single-process, on one core, one call per
   date, after one untimed warm-up call; every setting listed in ``LIBRARY_SETTINGS`` is
   measured and the best one on clean inputs (ties: on noisy inputs) is the one the
   targets are checked against. The seqbeam rows/s is the job's (model load and Beam
   start-up included, so small inputs understate it; section 1 has the large-N figure).
   Targets: seqbeam >= 99.9 % exact on clean inputs, >= 20 points above dateutil on
   noisy inputs, >= 5,000 dates/s.
"""

from __future__ import annotations

import datetime
import os
import shutil
import time
import warnings
from typing import Any, Callable, Optional, Sequence

from common import write_lines
from infer_models import Models, infer_config, line_number, line_numbers, read_predictions, run_job
from reporting import OtherLoad, md_table, met, num, pct

TARGET_DATES_CLEAN = 0.999
TARGET_NOISY_MARGIN = 0.20  # seqbeam's noisy exact match minus dateutil's
TARGET_DATES_PER_S = 5_000.0

# dateparser settings every dateparser setting starts from.
DATEPARSER_BASE = {"DATE_ORDER": "MDY", "PREFER_DAY_OF_MONTH": "first", "RETURN_AS_TIMEZONE_AWARE": False}


def library_settings(with_dateparser: bool = True) -> dict[str, tuple[str, str, Callable[[str], Any]]]:
    """Every library setting measured: label -> (library, settings shown, parse function)."""
    from dateutil import parser as dateutil_parser

    default = datetime.datetime(2000, 1, 1)
    settings = {
        "dateutil": ("python-dateutil", "parse(s, dayfirst=False)",
                     lambda s: dateutil_parser.parse(s, dayfirst=False)),
        "dateutil fuzzy": ("python-dateutil", "parse(s, dayfirst=False, fuzzy=True, default=2000-01-01)",
                           lambda s: dateutil_parser.parse(s, dayfirst=False, fuzzy=True, default=default)),
    }
    if with_dateparser:
        import dateparser

        english_absolute = {**DATEPARSER_BASE, "PARSERS": ["absolute-time"]}
        settings["dateparser"] = ("dateparser", f"parse(s, settings={DATEPARSER_BASE})",
                                  lambda s: dateparser.parse(s, settings=DATEPARSER_BASE))
        settings["dateparser en"] = ("dateparser", f"parse(s, languages=['en'], settings={english_absolute})",
                                     lambda s: dateparser.parse(s, languages=["en"], settings=english_absolute))
    return settings


def libraries(args) -> tuple[str, ...]:
    """Import names of the date libraries this run compares (for the versions printed with the figures)."""
    if "dates" not in args.sections:
        return ()
    return ("dateutil",) if args.skip_dateparser else ("dateutil", "dateparser")


def time_library(parse: Callable[[str], Any], examples: Sequence) -> dict:
    """Exact matches and rows/s of one library setting (one call per date, this process, one core)."""
    try:
        parse(examples[0].raw)  # warm-up, untimed (lazy imports, language data)
    except Exception:
        pass
    correct = []
    with OtherLoad() as load:
        started = time.perf_counter()
        for example in examples:
            try:
                result = parse(example.raw)
                correct.append(result is not None and result.date().isoformat() == example.iso)
            except Exception:  # noqa: BLE001 - any failure counts as wrong
                correct.append(False)
        seconds = time.perf_counter() - started
    return {"correct": correct, "seconds": seconds, "other_cores": load.other_cores}


def run_dates(args, workdir: str, models: Models) -> dict:
    """Section 2: the same clean and noisy dates through the inference job and every library setting."""
    from seqbeam.transforms.date_generator import generate_dates

    n = args.dates_compare_rows
    print(f"\n## 2. Dates: seqbeam vs python-dateutil and dateparser ({n:,} clean + {n:,} noisy dates, "
          f"month-first numeric formats; libraries single-process, one core)", flush=True)
    clean = list(generate_dates(n, args.seed + 2, day_first=False, noise_rate=0.0))
    noisy = list(generate_dates(n, args.seed + 3, day_first=False, noise_rate=1.0))
    directory = os.path.join(workdir, "inputs")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "dates-compare.txt")
    write_lines(path, (e.raw for e in clean + noisy))

    methods = {"seqbeam": seqbeam_method(models, path, clean + noisy, workdir)}
    for label, (library, settings, parse) in library_settings(not args.skip_dateparser).items():
        methods[label] = library_method(library, settings, parse, clean, noisy)
        print(f"  {label}: {methods[label]['seconds']:.1f} s (cores used by other processes meanwhile: "
              f"{methods[label]['other_cores']:.2f})", flush=True)
    for m in methods.values():
        m.update(exact_match(m.pop("correct"), clean, noisy))
    predicted = methods["seqbeam"].pop("predicted")
    methods["seqbeam"]["clean_misses"] = [
        (e.raw, e.iso, predicted.get(i + 1)) for i, e in enumerate(clean) if predicted.get(i + 1) != e.iso][:10]
    results = report(methods, n)
    if not args.keep:
        os.remove(path)
    return results


def seqbeam_method(models: Models, path: str, examples: Sequence, workdir: str) -> dict:
    """The inference job on the whole file; a date is right when its ``iso_date`` is the truth (joined on id)."""
    model = models.get("dates")
    output_dir = os.path.join(workdir, "infer", "dates-compare")
    config = infer_config("dates", models, path, output_dir, [])
    job = run_job(config)
    summary = job["summary"]
    table = read_predictions(config)
    shutil.rmtree(output_dir, ignore_errors=True)
    predicted: dict[int, Optional[str]] = {}
    if table is not None:
        numbers = line_numbers(path)
        for row_id, iso in zip(table["id"].to_pylist(), table["iso_date"].to_pylist()):
            predicted[line_number(row_id, numbers)] = iso
    print(f"  seqbeam job: {summary['rows']}, {summary['seconds']:.1f} s, {num(summary['rows_per_second'])} rows/s "
          f"(wall {job['wall_seconds']:.1f} s; cores used {job['own_cores']:.2f}, by other processes "
          f"{job['other_cores']:.2f})", flush=True)
    return {"library": "seqbeam", "settings": f"infer job, model {os.path.basename(model['model_path'])}, "
            f"length buckets {list(config.infer.length_buckets)}",
            "correct": [predicted.get(i + 1) == e.iso for i, e in enumerate(examples)], "predicted": predicted,
            "rows_per_second": summary["rows_per_second"],
            "wall_rows_per_second": len(examples) / job["wall_seconds"], "counts": summary["rows"],
            "peak_rss_mib": job["peak_rss_mib"], "other_cores": job["other_cores"]}


def library_method(library: str, settings: str, parse: Callable[[str], Any], clean: Sequence, noisy: Sequence) -> dict:
    """One library setting on the clean dates, then on the noisy ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean_run = time_library(parse, clean)
        noisy_run = time_library(parse, noisy)
    seconds = clean_run["seconds"] + noisy_run["seconds"]
    return {"library": library, "settings": settings, "correct": clean_run["correct"] + noisy_run["correct"],
            "seconds": seconds, "rows_per_second": (len(clean) + len(noisy)) / seconds if seconds else None,
            "clean_rows_per_second": len(clean) / clean_run["seconds"] if clean_run["seconds"] else None,
            "noisy_rows_per_second": len(noisy) / noisy_run["seconds"] if noisy_run["seconds"] else None,
            "other_cores": (clean_run["other_cores"] * clean_run["seconds"]
                            + noisy_run["other_cores"] * noisy_run["seconds"]) / seconds if seconds else None}


def exact_match(correct: Sequence[bool], clean: Sequence, noisy: Sequence) -> dict:
    """Exact match on the clean and the noisy dates (``correct``: clean first), overall and per format."""
    from seqbeam.transforms.date_generator import FORMATS

    n = len(clean)
    per_format = {}
    for fmt in FORMATS:
        hits = [ok for ok, e in zip(correct[:n], clean) if e.format == fmt]
        noisy_hits = [ok for ok, e in zip(correct[n:], noisy) if e.format == fmt]
        per_format[fmt] = {"clean_n": len(hits), "clean": sum(hits) / len(hits) if hits else None,
                           "noisy_n": len(noisy_hits),
                           "noisy": sum(noisy_hits) / len(noisy_hits) if noisy_hits else None}
    return {"clean_exact": sum(correct[:n]) / n if n else None,
            "noisy_exact": sum(correct[n:]) / len(noisy) if noisy else None, "per_format": per_format}


def report(methods: dict[str, dict], n: int) -> dict:
    """Prints the comparison and the targets; the section's results."""
    from seqbeam.transforms.date_generator import FORMATS

    def best(library: str) -> Optional[str]:
        candidates = [k for k, m in methods.items() if m["library"] == library]
        return max(candidates, key=lambda k: (methods[k]["clean_exact"], methods[k]["noisy_exact"]), default=None)

    best_dateutil, best_dateparser = best("python-dateutil"), best("dateparser")
    s = methods["seqbeam"]

    print()
    header = ["method", "settings", "clean exact", "noisy exact", "rows/s (clean+noisy)", "clean rows/s",
              "noisy rows/s", "other processes (cores)"]
    rows = []
    for label, m in methods.items():
        best_mark = " (best)" if label in (best_dateutil, best_dateparser) else ""
        rows.append([label + best_mark, m["settings"], pct(m["clean_exact"]), pct(m["noisy_exact"]),
                     num(m["rows_per_second"]), num(m.get("clean_rows_per_second")),
                     num(m.get("noisy_rows_per_second")), num(m.get("other_cores"), 2)])
    print(md_table(header, rows, ["---", "---", "---:", "---:", "---:", "---:", "---:", "---:"]))
    print("(seqbeam rows/s: the job summary's, one job over the clean and noisy rows together, model load and Beam "
          "start-up included; wall "
          f"{num(s['wall_rows_per_second'])} rows/s. Libraries: one call per date in this process, one core.)")

    print()
    shown = ["seqbeam"] + [k for k in (best_dateutil, best_dateparser) if k]
    fmt_rows = []
    for fmt in FORMATS:
        pf = s["per_format"][fmt]
        fmt_rows.append([fmt, str(pf["clean_n"])] + [pct(methods[k]["per_format"][fmt]["clean"]) for k in shown]
                        + [str(pf["noisy_n"])] + [pct(methods[k]["per_format"][fmt]["noisy"]) for k in shown])
    print(md_table(["format", "clean n", *[f"{k} clean" for k in shown], "noisy n", *[f"{k} noisy" for k in shown]],
                   fmt_rows, ["---"] + ["---:"] * (2 * len(shown) + 2)))
    if s["clean_misses"]:
        print("  seqbeam clean misses (raw -> truth / iso_date): " + "; ".join(
            f"{raw!r} -> {iso} / {got}" for raw, iso, got in s["clean_misses"]))

    checks = {
        "clean": {"value": s["clean_exact"], "target": TARGET_DATES_CLEAN,
                  "met": (s["clean_exact"] or 0) >= TARGET_DATES_CLEAN},
        "noisy_margin_over_dateutil": {
            "value": None if best_dateutil is None else s["noisy_exact"] - methods[best_dateutil]["noisy_exact"],
            "against": best_dateutil, "target": TARGET_NOISY_MARGIN},
        "rows_per_second": {"value": s["rows_per_second"], "target": TARGET_DATES_PER_S},
    }
    margin = checks["noisy_margin_over_dateutil"]
    margin["met"] = None if margin["value"] is None else margin["value"] >= TARGET_NOISY_MARGIN
    checks["rows_per_second"]["met"] = (s["rows_per_second"] or 0) >= TARGET_DATES_PER_S
    print(f"\n  targets: clean exact {pct(s['clean_exact'])} >= {100 * TARGET_DATES_CLEAN:g} %: "
          f"{met(checks['clean']['met'])}; noisy {pct(s['noisy_exact'])} vs {best_dateutil} "
          f"{pct(methods[best_dateutil]['noisy_exact']) if best_dateutil else 'n/a'}: "
          f"{_points(margin['value'])} "
          f"(>= +{100 * TARGET_NOISY_MARGIN:g}): {met(margin['met'])}; job {num(s['rows_per_second'])} dates/s "
          f">= {TARGET_DATES_PER_S:,.0f}: {met(checks['rows_per_second']['met'])} (this small job; see section 1)",
          flush=True)
    return {"rows_each": n, "methods": methods, "best": {"python-dateutil": best_dateutil,
                                                         "dateparser": best_dateparser}, "checks": checks}


def _points(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} points"


def headline_rows(dates: Optional[dict]) -> list[list[str]]:
    """The section's lines of the headline table."""
    rows: list[list[str]] = []
    if dates:
        s = dates["methods"]["seqbeam"]
        checks = dates["checks"]
        rows.append(["dates", f"seqbeam exact, clean ({dates['rows_each']:,})", pct(s["clean_exact"]),
                     f">= {100 * TARGET_DATES_CLEAN:g} % {met(checks['clean']['met'])}"])
        margin = checks["noisy_margin_over_dateutil"]
        rows.append(["dates", f"seqbeam exact, noisy ({dates['rows_each']:,})", pct(s["noisy_exact"]),
                     f"{margin['against']} + {100 * TARGET_NOISY_MARGIN:g} points {met(margin['met'])}"])
        for label in (dates["best"]["python-dateutil"], dates["best"]["dateparser"]):
            if label:
                m = dates["methods"][label]
                rows.append(["dates", f"{label}: clean / noisy exact, rows/s", f"{pct(m['clean_exact'])} / "
                             f"{pct(m['noisy_exact'])}, {num(m['rows_per_second'])}", m["settings"]])
        rows.append(["dates", "seqbeam job rows/s (comparison run)", num(s["rows_per_second"]),
                     f">= {TARGET_DATES_PER_S:,.0f} {met(checks['rows_per_second']['met'])}"])
    return rows
