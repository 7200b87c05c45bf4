"""The HTML run report: small realistic run folders per task, read back as HTML and PNGs."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq

from seqbeam.pipelines.report import render_report, write_report
from seqbeam.transforms.records import rejection
from seqbeam.transforms.sinks import REJECTED_SCHEMA

CLASSES = ["❤️", "⚾", "😄", "😞", "🍴"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
CONFIG = "task:\n  name: demo\ntrain:\n  epochs: 3\n"
LONG_PATH = "gs://bucket/" + "deep/" * 40 + "logs"  # longer than a cut cell
DATE_FORMATS = ["long", "short", "iso", "dd.mm.yyyy", "mm/dd/yyyy", "d MMM yyyy"]


def run_summary(task: str, task_dir) -> dict:
    return {
        "task": task, "task_dir": str(task_dir), "config_hash": "9214c7646e02a75d",
        "started": "2026-11-21T10:00:00+00:00", "seconds": 42.5,
        "stages": [
            {"stage": "preprocess", "status": "skipped", "seconds": 0.1, "hash": "0123456789abcdef",
             "outputs": {"data": f"{task_dir}/data"}},
            {"stage": "train", "status": "ran", "seconds": 30.2, "hash": "fedcba9876543210",
             "outputs": {"model": f"{task_dir}/model/1795257249", "logs": LONG_PATH}},
            {"stage": "infer", "status": "ran", "seconds": 10.0, "hash": "00112233aabbccdd",
             "outputs": {"predictions": f"{task_dir}/predictions"}},
            {"stage": "evaluate", "status": "ran", "seconds": 2.2, "hash": "99887766aabbccdd", "outputs": {}},
        ],
    }


def write_json(path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")


def write_parquet(path, rows: list[dict], schema: pa.Schema | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), str(path))


def write_common(task_dir, metrics: dict, rejected_input: str = "i hate mondays") -> None:
    """metrics.json, history, infer summary, predictions and both kinds of rejected rows."""
    write_json(task_dir / "eval" / "metrics.json", metrics)
    write_json(task_dir / "train" / "history.json", {
        "loss": [1.5, 0.9, 0.4], "val_loss": [1.6, 1.0, 0.6],
        "accuracy": [0.4, 0.8, 0.95], "val_accuracy": [0.35, 0.7, 0.9]})
    write_json(task_dir / "infer_summary.json", {
        "rows": {"in": 52, "out": 50, "rejected": 2, "low_confidence": 7, "truncated": 1, "flagged": 0},
        "seconds": 0.95, "rows_per_second": 54.7, "model_path": f"{task_dir}/model/1795257249"})
    write_parquet(task_dir / "predictions" / "predictions-00000-of-00001.parquet", [
        {"id": f"corpus.csv:{i}", "text": "x" * 300 if i == 0 else f"sentence {i}",
         "sentences": [{"text": f"sentence {i}", "emoji": "😄", "probability": 0.813315749}],
         "probability": 0.123456, "truncated": False} for i in range(20)])
    # Written as every job writes them: records made by rejection(), in the one rejected schema.
    write_parquet(task_dir / "rejected" / "rejected-00000-of-00001.parquet", [
        rejection("corpus.csv:90", rejected_input, "infer", "too_many_tokens", "900 tokens > 200"),
        rejection("corpus.csv:91", "", "validate", "empty_text")], schema=REJECTED_SCHEMA)
    write_parquet(task_dir / "data" / "rejected" / "rejected-00000-of-00001.parquet", [
        rejection("corpus.csv:7", "bad,row,with,commas", "read", "columns", "4 fields, expected 2"),
        rejection("corpus.csv:8", "nul\x00 and lone \udc80 surrogate", "read", "control", "control characters")],
        schema=REJECTED_SCHEMA)


def classifier_metrics() -> dict:
    split = {
        "rows": 60, "accuracy": 0.9321, "macro_f1": 0.9102, "classes": CLASSES,
        "per_class": [{"class": c, "precision": 0.9, "recall": 0.85, "f1": 0.874, "support": 12} for c in CLASSES],
        "confusion_matrix": [[12 if i == j else i + j for j in range(5)] for i in range(5)],
    }
    return {"task": "emoji", "kind": "emoji", "reference": "labels of the training corpus",
            "rows": {"predictions": 60, "with_reference": 60, "without_reference": 0},
            "splits": {"all": {**split, "accuracy": 0.97}, "test": split}}


def images(report: str) -> list[bytes]:
    return [base64.b64decode(data) for data in IMAGE.findall(report)]


def test_classifier_report_is_one_file_with_images(tmp_path):
    task_dir = tmp_path / "emoji"
    write_common(task_dir, classifier_metrics())

    path = write_report(str(task_dir), CONFIG, run_summary("emoji", task_dir))

    assert path == f"{task_dir}/report.html"
    assert sorted(p.name for p in task_dir.iterdir() if p.is_file()) == ["infer_summary.json", "report.html"]
    report = (task_dir / "report.html").read_text(encoding="utf-8")
    pngs = images(report)
    assert len(pngs) >= 3  # confusion matrix, loss, accuracy
    assert all(png.startswith(PNG_MAGIC) for png in pngs)
    assert "could not be rendered" not in report and "not available" not in report
    for name in CLASSES:
        assert name in report
    assert "93.2%" in report and "0.910" in report  # the test split is the headline
    assert "fedcba9876543210" in report and "skipped" in report and f"logs: {LONG_PATH}</td>" in report
    assert "x" * 200 + "…" in report and "x" * 201 not in report
    assert "0.813" in report and "0.813315749" not in report
    assert "columns: 4 fields, expected 2" in report and "too_many_tokens: 900 tokens &gt; 200" in report
    assert "nul\\x00 and lone \\x80 surrogate" in report
    assert "<pre>task:\n  name: demo" in report
    assert "src=\"http" not in report and "<script" not in report


def test_dates_report_draws_per_format_bars(tmp_path):
    task_dir = tmp_path / "dates"
    split = {"rows": 120, "exact_match": 0.8, "valid_rate": 0.97, "clean": {"rows": 60, "exact_match": 0.9},
             "noisy": {"rows": 60, "exact_match": 0.7},
             "per_format": [{"format": f, "clean_rows": 10, "clean_exact_match": 0.9, "noisy_rows": 10,
                             "noisy_exact_match": None if i == 0 else 0.7} for i, f in enumerate(DATE_FORMATS)]}
    write_common(task_dir, {"task": "dates", "kind": "dates", "reference": "generated targets",
                            "rows": {"predictions": 120, "with_reference": 120, "without_reference": 0},
                            "splits": {"all": split}})
    source, target = list("3 May 2021"), list("2021-05-03") + ["<end>"]
    weights = [[1.0 if j == min(i, len(source) - 1) else 0.0 for j in range(len(source))] for i in range(len(target))]
    write_json(task_dir / "eval" / "attention.json", {"examples": 1, "items": [
        {"source": "3 May 2021", "translation": "2021-05-03", "source_tokens": source, "target_tokens": target,
         "weights": weights}]})

    report = render_report(str(task_dir), CONFIG, run_summary("dates", task_dir))

    assert 'alt="exact match per date format"' in report and 'alt="attention weights"' in report
    assert len(images(report)) == 4  # per-format bars, attention, loss, accuracy
    for name in DATE_FORMATS:
        assert name in report
    assert "90.0%" in report and "70.0%" in report and "could not be rendered" not in report


def test_translation_report_draws_attention_heatmaps(tmp_path):
    task_dir = tmp_path / "translate"
    write_common(task_dir, {"task": "translate", "kind": "translation", "reference": None,
                            "rows": {"predictions": 40, "with_reference": 40, "without_reference": 0},
                            "splits": {"all": {"rows": 40, "bleu": 23.456, "chrf": 51.2,
                                               "bleu_signature": "nrefs:1|case:mixed|tok:13a|version:2.4.0",
                                               "chrf_signature": "nrefs:1|nc:6|nw:0|version:2.4.0"}}})
    examples = [
        {"source": "Nice to meet you.", "translation": "Encantado de conocerte.",
         "source_tokens": ["nice", "to", "meet", "you", "."], "target_tokens": ["encantado", "de", "conocerte", "."]},
        {"source": "I ❤️ $5 tacos", "translation": "Me ❤️ los tacos ⚾",
         "source_tokens": ["i", "❤️", "$5", "ta$cos"], "target_tokens": ["me", "❤️", "los", "tacos", "⚾", "\x00"]},
        {"source": "Where?", "translation": "¿Dónde?", "source_tokens": ["where", "?"],
         "target_tokens": ["¿", "dónde", "?"]},
    ]
    for example in examples:
        rows, columns = len(example["target_tokens"]), len(example["source_tokens"])
        example["weights"] = [[1.0 / columns] * columns for _ in range(rows)]
    write_json(task_dir / "eval" / "attention.json", {"examples": len(examples), "items": examples})

    report = render_report(str(task_dir), CONFIG, run_summary("translate", task_dir))

    assert report.count('alt="attention weights"') == 3
    assert len(images(report)) == 5  # 3 heatmaps, loss, accuracy
    assert "23.456" in report and "nrefs:1|case:mixed|tok:13a|version:2.4.0" in report
    assert "¿Dónde?" in report and "could not be rendered" not in report


def test_names_report_compares_lengths(tmp_path):
    task_dir = tmp_path / "names"
    split = {"rows": 100, "novel": 0.83, "unique": 0.97,
             "length": {"mean": 12.4, "min": 5, "max": 21, "histogram": {"5": 2, "10": 40, "14": 50, "21": 8}},
             "training_length": {"mean": 11.9, "histogram": {"6": 30, "10": 300, "13": 500, "18": 170}}}
    write_common(task_dir, {"task": "names", "kind": "names", "reference": "training names",
                            "rows": {"predictions": 100, "with_reference": 0, "without_reference": 100},
                            "splits": {"all": split}})

    report = render_report(str(task_dir), CONFIG, run_summary("names", task_dir))

    assert 'alt="name length histogram"' in report
    assert "83.0%" in report and "97.0%" in report and "could not be rendered" not in report


def test_report_of_an_empty_run_says_what_is_missing(tmp_path):
    task_dir = tmp_path / "empty"
    task_dir.mkdir()

    path = write_report(str(task_dir), CONFIG, {"task": "emoji", "stages": []})

    report = (task_dir / "report.html").read_text(encoding="utf-8")
    assert path.endswith("report.html")
    assert "<img" not in report and "could not be rendered" not in report
    for missing in ("eval/metrics.json", "infer_summary.json", "train/history.json", "predictions/*.parquet"):
        assert f"not available ({missing})" in report
    assert "no stages recorded" in report and "<pre>task:" in report


def test_a_malformed_file_spoils_only_its_section(tmp_path):
    task_dir = tmp_path / "emoji"
    write_common(task_dir, classifier_metrics())
    (task_dir / "train" / "history.json").write_text("{not json", encoding="utf-8")

    report = render_report(str(task_dir), CONFIG, run_summary("emoji", task_dir))

    assert report.count("could not be rendered: JSONDecodeError") == 1
    assert 'alt="confusion matrix"' in report and "sentence 3" in report


def test_user_text_is_escaped(tmp_path):
    task_dir = tmp_path / "emoji"
    write_common(task_dir, classifier_metrics(), rejected_input="<script>alert(1)</script>")

    report = render_report(str(task_dir), "name: <b>&", {"task": "<i>emoji</i>", "stages": []})

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "<script" not in report and "<i>emoji" not in report and "<b>&" not in report
    assert "&lt;i&gt;emoji&lt;/i&gt;" in report and "name: &lt;b&gt;&amp;" in report
    report.encode("utf-8")  # lone surrogates of the rejected rows were escaped, not kept


def test_reports_render_concurrently(tmp_path):
    dirs = []
    for name in ("a", "b"):
        dirs.append(tmp_path / name)
        write_common(dirs[-1], classifier_metrics())

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda d: render_report(str(d), CONFIG, {"task": "emoji"}), dirs * 2))

    assert reports[0] == reports[2] and reports[1] == reports[3]  # same input, same bytes, from any thread
    assert images(reports[0]) == images(reports[1])
