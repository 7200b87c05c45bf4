"""One self-contained HTML report per task run: ``<task_dir>/report.html``.

A person opens it after a scheduled ``seqbeam run``: the stages that ran, headline
metrics, per-task charts (confusion matrix, per-format date accuracy, name lengths,
attention), learning curves, example predictions, rejected rows and the resolved config.
Every figure is a matplotlib PNG embedded as a base64 ``data:`` URI, so the report is
one file that can be mailed or copied out of a bucket.

Every input file is optional: a missing one leaves its section out or shows a short
"not available" line, and a malformed one spoils only its own section (logged). All
text taken from the run is escaped, cleaned of control characters and truncated.
Figures use the object-oriented ``Figure`` API with the Agg canvas (no pyplot state),
so reports can be rendered from several threads and leak no figures.
"""

from __future__ import annotations

import base64
import collections
import functools
import html
import io
import json
import logging
import re
from typing import Any, Callable, Optional

import numpy as np
import pyarrow.parquet as pq
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from seqbeam.pipelines import layout
from seqbeam.storage import join_path, read_json

_LOG = logging.getLogger(__name__)

_CELL_CHARS = 200  # longer table cells are cut, with "…"
_PREVIEW_ROWS = 15
_REJECTED_EXAMPLES = 10
_ATTENTION_EXAMPLES = 4
_DPI = 100
_CLASSIFIER_KINDS = ("emoji", "grammar")
# Characters that would corrupt the HTML or its UTF-8 encoding: C0/C1 controls (bar tab
# and newline) and lone surrogates (json.loads accepts "\udc80").
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:.6em 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:6px 14px;min-width:90px}
.tile b{display:block;font-size:1.8em;font-weight:600}.tile span{color:#666;font-size:.85em}
.figs{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}img{max-width:100%}
.note,.meta{color:#666}pre{background:#f7f7f7;border:1px solid #ddd;padding:.8em;overflow-x:auto}
"""


def write_report(task_dir: str, config_yaml: str, run_summary: dict) -> str:
    """Renders ``<task_dir>/report.html`` from the run's files; returns its path.

    ``task_dir`` may be local or ``gs://``; ``config_yaml`` is the resolved config and
    ``run_summary`` the orchestrator's record of the stages (see :func:`render_report`).
    """
    path = layout.report_path(task_dir)
    text = render_report(task_dir, config_yaml, run_summary)
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))
    _LOG.info("report written to %s", path)
    return path


def render_report(task_dir: str, config_yaml: str, run_summary: dict) -> str:
    """The report's HTML text (write_report writes it).

    Reads ``eval/metrics.json``, ``eval/attention.json``, ``train/history.json``,
    ``infer_summary.json``, ``predictions/*.parquet``, ``rejected/*.parquet`` and
    ``data/rejected/*.parquet`` under ``task_dir`` (:mod:`seqbeam.pipelines.layout`), all
    optional. ``run_summary`` gives the
    task name, config hash, start time and the stages (stage, status, seconds, hash,
    outputs); kept separate from the files so a report can describe any run.
    """
    run = _RunFiles(task_dir)
    task = run_summary.get("task") or (run.metrics or {}).get("task") or task_dir.rstrip("/").rsplit("/", 1)[-1]
    meta = " · ".join(f"{label} {_esc(value)}" for label, value in (
        ("config", run_summary.get("config_hash")), ("started", run_summary.get("started")),
        ("total", _seconds(run_summary.get("seconds"))), ("in", task_dir)) if value is not None)
    sections = [
        ("Stages", lambda: _stages(run_summary)),
        ("Headline", lambda: _headline(run, run_summary)),
        ("Classifier", lambda: _classifier(run)),
        ("Dates", lambda: _dates(run)),
        ("Names", lambda: _names(run)),
        ("Translation", lambda: _translation(run)),
        ("Attention", lambda: _attention(run)),
        ("Learning curves", lambda: _learning_curves(run)),
        ("Example predictions", lambda: _predictions(run)),
        ("Rejected rows", lambda: _rejected(run)),
        ("Config", lambda: f"<pre>{_esc(config_yaml, None)}</pre>" if config_yaml else _note("no config given")),
    ]
    body = "".join(_section(title, render) for title, render in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>seqbeam report: {_esc(task)}</title><style>{_CSS}</style></head><body>"
            f'<h1>seqbeam report: {_esc(task)}</h1><p class="meta">{meta}</p>{body}</body></html>\n')


class _RunFiles:
    """The run's optional files under ``task_dir``, each read at most once; None when missing."""

    def __init__(self, task_dir: str):
        self.task_dir = task_dir

    @functools.cached_property
    def metrics(self) -> Optional[dict]:
        return read_json(layout.metrics_path(self.task_dir))

    @functools.cached_property
    def attention(self) -> Optional[list]:
        """The examples of the evaluation stage's ``{"examples": n, "items": [...]}``."""
        return (read_json(layout.attention_path(self.task_dir)) or {}).get("items")

    @functools.cached_property
    def history(self) -> Optional[dict]:
        return read_json(layout.history_path(self.task_dir))

    @functools.cached_property
    def infer_summary(self) -> Optional[dict]:
        return read_json(layout.infer_summary_path(self.task_dir))

    def kind(self) -> Optional[str]:
        return (self.metrics or {}).get("kind")

    def split(self) -> tuple[str, dict]:
        """The headline split: "test" when the corpus was the training corpus, else "all"."""
        splits = (self.metrics or {}).get("splits") or {}
        name = "test" if "test" in splits else "all"
        return name, splits.get(name) or {}

    def files(self, folder: str, pattern: str) -> list[str]:
        """The files named ``pattern`` in ``folder``, sorted; none when the folder is missing."""
        try:
            matches = FileSystems.match([join_path(folder, pattern)])[0].metadata_list
        except BeamIOError:  # some filesystems raise for a folder that does not exist
            return []
        return sorted(m.path for m in matches)


# ---------------------------------------------------------------------------------------
# Sections: each returns its HTML body, or None to leave the section out.

def _stages(summary: dict) -> str:
    stages = summary.get("stages") or []
    if not stages:
        return _note("no stages recorded")
    rows = [[s.get("stage"), s.get("status"), _seconds(s.get("seconds")), s.get("hash"),
             tuple(f"{name}: {path}" for name, path in (s.get("outputs") or {}).items())]
            for s in stages]
    return _table(["stage", "status", "time", "hash", "outputs"], rows)


def _headline(run: _RunFiles, run_summary: dict) -> str:
    parts = []
    if run.metrics is None:
        parts.append(_note("evaluation metrics not available (eval/metrics.json)"))
    else:
        name, m = run.split()
        kind = run.kind()
        if kind in _CLASSIFIER_KINDS:
            tiles = [("accuracy", _pct(m.get("accuracy"))), ("macro F1", _num(m.get("macro_f1")))]
        elif kind == "translation":
            tiles = [("BLEU", _num(m.get("bleu"), 1)), ("chrF", _num(m.get("chrf"), 1))]
        elif kind == "dates":
            tiles = [("exact match", _pct(m.get("exact_match"))),
                     ("clean", _pct((m.get("clean") or {}).get("exact_match"))),
                     ("noisy", _pct((m.get("noisy") or {}).get("exact_match"))),
                     ("valid dates", _pct(m.get("valid_rate")))]
        elif kind == "names":
            tiles = [("novel", _pct(m.get("novel"))), ("unique", _pct(m.get("unique"))),
                     ("mean length", _num((m.get("length") or {}).get("mean"), 1))]
        else:
            tiles = []
        parts.append(_tiles(tiles + [("rows scored", m.get("rows"))]))
        rows = run.metrics.get("rows") or {}
        parts.append(f'<p class="meta">{_esc(kind or "")} metrics on the "{_esc(name)}" split · reference: '
                     f'{_esc(run.metrics.get("reference") or "none")} · '
                     + ", ".join(f"{_esc(k.replace('_', ' '))} {_esc(v)}" for k, v in rows.items()) + "</p>")
    summary = run.infer_summary
    if summary is None:
        parts.append(_note("inference summary not available (infer_summary.json)"))
    else:
        counts = summary.get("rows") or {}
        parts.append(_tiles([(k.replace("_", " "), counts[k]) for k in
                             ("in", "out", "rejected", "low_confidence", "truncated", "flagged") if k in counts]))
        seconds, rate = _infer_timing(summary, run_summary)
        parts.append(f'<p class="meta">inference: {_seconds(seconds)}, '
                     f'{_esc(rate)} rows/s · model {_esc(summary.get("model_path"))}</p>')
    return "".join(parts)


def _infer_timing(summary: dict, run_summary: dict) -> tuple[Optional[float], Optional[float]]:
    """Seconds and rows/s of the inference job.

    The pipeline writes infer_summary.json and cannot know the launcher's wall time, so these
    come from the run summary's infer stage (what the launcher measured); summaries written
    before that change carry them themselves.
    """
    stage = next((s for s in run_summary.get("stages") or [] if s.get("stage") == "infer"), {})
    seconds = summary.get("seconds", stage.get("seconds"))
    return seconds, summary.get("rows_per_second", (stage.get("summary") or {}).get("rows_per_second"))


def _classifier(run: _RunFiles) -> Optional[str]:
    if run.kind() not in _CLASSIFIER_KINDS:
        return None
    name, m = run.split()
    classes = [str(c) for c in m.get("classes") or []]
    parts = [_note(f'split "{name}"')]
    matrix = m.get("confusion_matrix")
    if classes and matrix:
        parts.append(_img(_confusion_figure(classes, np.asarray(matrix, dtype=np.int64)), "confusion matrix"))
    else:
        parts.append(_note("confusion matrix not available"))
    index = {c: i for i, c in enumerate(classes)}
    parts.append(_table(["#", "class", "precision", "recall", "F1", "support"], [
        [index.get(str(p.get("class")), ""), p.get("class"), p.get("precision"), p.get("recall"), p.get("f1"),
         p.get("support")] for p in m.get("per_class") or []]))
    return "".join(parts)


def _dates(run: _RunFiles) -> Optional[str]:
    if run.kind() != "dates":
        return None
    name, m = run.split()
    formats = m.get("per_format") or []
    if not formats:
        return _note(f'no per-format breakdown on split "{name}" (the corpus was not generated)')
    figure = _img(_per_format_figure(formats), "exact match per date format")
    table = _table(["format", "clean rows", "clean exact match", "noisy rows", "noisy exact match"], [
        [f.get("format"), f.get("clean_rows"), f.get("clean_exact_match"), f.get("noisy_rows"),
         f.get("noisy_exact_match")] for f in formats])
    return _note(f'split "{name}"') + figure + table


def _names(run: _RunFiles) -> Optional[str]:
    if run.kind() != "names":
        return None
    _, m = run.split()
    # The evaluation stage puts the training names' lengths in the "all" split only.
    training = m.get("training_length") or run.metrics["splits"].get("all", {}).get("training_length") or {}
    length = m.get("length") or {}
    tiles = _tiles([("novel", _pct(m.get("novel"))), ("unique", _pct(m.get("unique"))),
                    ("min length", length.get("min")), ("max length", length.get("max")),
                    ("training mean length", _num(training.get("mean"), 1))])
    histograms = {label: h for label, h in (("sampled", length.get("histogram")),
                                            ("training", training.get("histogram"))) if h}
    if not histograms:
        return tiles + _note("length histograms not available")
    return tiles + _img(_length_figure(histograms), "name length histogram")


def _translation(run: _RunFiles) -> Optional[str]:
    if run.kind() != "translation":
        return None
    name, m = run.split()
    return _table(["metric", f'score ("{name}" split)', "signature"], [
        ["BLEU", m.get("bleu"), m.get("bleu_signature")], ["chrF", m.get("chrf"), m.get("chrf_signature")]])


def _attention(run: _RunFiles) -> Optional[str]:
    """Heatmaps of the decoder's attention (seq2seq models with attention: translation, dates)."""
    if not run.attention:
        return _note("attention weights not available (eval/attention.json)") if run.kind() == "translation" else None
    parts = []
    for example in run.attention[:_ATTENTION_EXAMPLES]:
        weights = np.asarray(example.get("weights"), dtype=np.float64)
        caption = f"<p>{_esc(example.get('source'))} → {_esc(example.get('translation'))}</p>"
        if weights.ndim != 2 or weights.size == 0:
            parts.append(caption + _note("weights are not a matrix"))
            continue
        parts.append(caption + _img(_attention_figure(
            weights, example.get("source_tokens") or [], example.get("target_tokens") or []), "attention weights"))
    return "".join(parts)


def _learning_curves(run: _RunFiles) -> str:
    history = {k: v for k, v in (run.history or {}).items() if isinstance(v, list) and v}
    names = [k for k in history if not k.startswith("val_")]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in history]
    if not names:
        return _note("training history not available (train/history.json)")
    names.sort(key=lambda k: (k != "loss", k))
    images = [_img(_curve_figure(name, history.get(name), history.get(f"val_{name}")), f"{name} per epoch")
              for name in names]
    return f'<div class="figs">{"".join(images)}</div>'


def _predictions(run: _RunFiles) -> str:
    rows = _parquet_head(run.files(layout.predictions_dir(run.task_dir), "*.parquet"), _PREVIEW_ROWS)
    if not rows:
        return _note("predictions not available (predictions/*.parquet)")
    return _table(list(rows[0]), [list(row.values()) for row in rows])


def _rejected(run: _RunFiles) -> str:
    jobs = (("Preprocessing (data/rejected/)", layout.preprocess_rejected_dir(run.task_dir)),
            ("Inference (rejected/)", layout.infer_rejected_dir(run.task_dir)))
    parts = []
    for title, folder in jobs:
        files = run.files(folder, "*.parquet")
        counts = collections.Counter()
        for path in files:  # two columns only: a big corpus can reject millions of rows
            with FileSystems.open(path) as f:
                table = pq.read_table(f, columns=["stage", "code"])
            counts.update(zip(table.column("stage").to_pylist(), table.column("code").to_pylist()))
        parts.append(_rejections(title, files, counts, _parquet_head(files, _REJECTED_EXAMPLES)))
    return "".join(parts)


def _rejections(title: str, files: list, counts: collections.Counter, examples: list[dict]) -> str:
    head = f"<h3>{_esc(title)}</h3>"
    if not files:
        return head + _note("not available")
    if not counts:
        return head + _note("no rows rejected")
    return (head + _table(["stage", "code", "rows"], [[s, c, n] for (s, c), n in counts.most_common()])
            + _table(["id", "stage", "code", "raw", "reason"],
                     [[r.get(k) for k in ("id", "stage", "code", "raw", "reason")] for r in examples]))


# ---------------------------------------------------------------------------------------
# Figures

def _confusion_figure(classes: list[str], matrix: np.ndarray) -> Figure:
    n = len(classes)
    side = min(14.0, max(3.5, 0.5 * n + 2))
    fig = _figure(side + 1, side)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    if n <= 30:
        for (true, predicted), count in np.ndenumerate(matrix):
            ax.text(predicted, true, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > matrix.max() / 2 else "black")
    # A class name the font cannot draw (an emoji) shows as its index, as in the table below.
    labels = [c if _drawable(c) else f"#{i}" for i, c in enumerate(classes)]
    ax.set_xticks(range(n), [_plot_text(t) for t in labels], rotation=90 if n > 8 else 0)
    ax.set_yticks(range(n), [_plot_text(t) for t in labels])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    return fig


def _per_format_figure(formats: list[dict]) -> Figure:
    y = np.arange(len(formats))
    fig = _figure(7, 0.32 * len(formats) + 1.2)
    ax = fig.add_subplot()
    for offset, key, label in ((-0.2, "clean_exact_match", "clean"), (0.2, "noisy_exact_match", "noisy")):
        ax.barh(y + offset, [f.get(key) or 0.0 for f in formats], height=0.4, label=label)
    ax.set_yticks(y, [_plot_text(f.get("format"), 30) for f in formats])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("exact match")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def _length_figure(histograms: dict[str, dict]) -> Figure:
    lengths = sorted({int(k) for h in histograms.values() for k in h})
    fig = _figure(7, 3)
    ax = fig.add_subplot()
    width = 0.8 / len(histograms)
    for i, (label, histogram) in enumerate(histograms.items()):
        counts = np.array([histogram.get(str(n), 0) for n in lengths], dtype=np.float64)
        ax.bar(np.array(lengths) + (i - (len(histograms) - 1) / 2) * width, counts / max(counts.sum(), 1),
               width=width, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("name length (characters)")
    ax.set_ylabel("share of names")
    ax.legend()
    return fig


def _attention_figure(weights: np.ndarray, source: list, target: list) -> Figure:
    rows, columns = weights.shape
    fig = _figure(min(12.0, 0.4 * columns + 2), min(10.0, 0.35 * rows + 1.5))
    ax = fig.add_subplot()
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8)
    if len(source) == columns:  # tokens label the axes only when they match the weights
        ax.set_xticks(range(columns), [_plot_text(t, 15) for t in source], rotation=90)
    if len(target) == rows:
        ax.set_yticks(range(rows), [_plot_text(t, 15) for t in target])
    ax.set_xlabel("source tokens")
    ax.set_ylabel("target tokens")
    return fig


def _curve_figure(name: str, train: Optional[list], validation: Optional[list]) -> Figure:
    fig = _figure(3.6, 2.6)
    ax = fig.add_subplot()
    for values, label in ((train, "train"), (validation, "validation")):
        if values:
            ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(_plot_text(name, 40))
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    return fig


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _img(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_esc(alt)}">'


@functools.lru_cache(maxsize=None)
def _has_glyph(char: str) -> bool:
    font = font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))
    return font.get_char_index(ord(char)) != 0


def _drawable(text: str) -> bool:
    return all(_has_glyph(c) for c in text)


def _plot_text(value: Any, limit: int = 24) -> str:
    """Text safe for a figure: glyphs the font lacks (and controls) as "□", "$" not mathtext, cut.

    A blank token (a space in a char-level model) shows as "␣".
    """
    text = str(value)
    text = "".join("␣" if text.isspace() else c if _has_glyph(c) else "□" for c in text)
    return _clip(text, limit).replace("$", r"\$")


# ---------------------------------------------------------------------------------------
# HTML and input helpers

def _section(title: str, render: Callable[[], Optional[str]]) -> str:
    """A ``<section>`` for the body ``render`` returns; a failure spoils only this section."""
    try:
        body = render()
    except Exception as error:  # noqa: BLE001 - a malformed input file must not lose the whole report
        _LOG.exception("report section %r failed", title)
        body = _note(f"could not be rendered: {type(error).__name__}: {error}")
    return "" if body is None else f"<section><h2>{_esc(title)}</h2>{body}</section>"


def _table(header: list, rows: list[list]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    """A table cell: numbers right-aligned, a tuple (paths) as uncut lines, lists and dicts (data) as JSON."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="n">{_num(value)}</td>'
    if isinstance(value, tuple):
        return "<td>" + "<br>".join(_esc(line, None) for line in value) + "</td>"
    if isinstance(value, (list, dict)):
        value = json.dumps(_rounded(value), ensure_ascii=False, default=str)
    return "<td>" + _esc("" if value is None else value) + "</td>"


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _tiles(tiles: list[tuple[str, Any]]) -> str:
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><b>{_esc("—" if v is None else v)}</b><span>{_esc(label)}</span></div>'
        for label, v in tiles) + "</div>"


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


def _esc(value: Any, limit: Optional[int] = _CELL_CHARS) -> str:
    """Any value as HTML text: controls and lone surrogates as \\xNN / \\uNNNN, cut, escaped."""
    text = _UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}",
                            str(value))
    return html.escape(text if limit is None else _clip(text, limit))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _num(value: Optional[float], digits: int = 3) -> Optional[str]:
    if value is None:
        return None
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _pct(value: Optional[float]) -> Optional[str]:
    return None if value is None else f"{100 * value:.1f}%"


def _seconds(value: Optional[float]) -> Optional[str]:
    return None if value is None else f"{value:.1f} s"


def _parquet_head(paths: list[str], count: int) -> list[dict]:
    """The first ``count`` rows of the Parquet files, in order, as dicts."""
    rows = []
    for path in paths:
        with FileSystems.open(path) as f:
            batch = next(pq.ParquetFile(f).iter_batches(batch_size=count - len(rows)), None)
        rows.extend([] if batch is None else batch.to_pylist())
        if len(rows) >= count:
            break
    return rows[:count]
