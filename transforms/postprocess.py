"""Inference post-processing: model outputs -> validated prediction rows, per task.

Each task has an :class:`OutputFormat` that turns one keyed ``PredictionResult`` into a
row of its Parquet schema, or into a rejected record with its reason; nothing is dropped.
:class:`PostprocessBatches` applies it to batches of results and emits one Arrow table
per batch (so the Parquet sink writes columns, not rows), and a count dict per batch of
what happened (the job's accounting is data, summed in the pipeline).

Pure helpers (sentence splitting, emoji insertion, detokenization, date checks) are
module functions, tested on their own.
"""

from __future__ import annotations

import calendar
import datetime
import math
import re
import unicodedata
from typing import Any, Iterable, NamedTuple, Optional, Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.ml.inference.base import PredictionResult

from seqbeam.text.day_order import strip_day_order
from seqbeam.transforms.date_generator import WEEKDAYS
from seqbeam.transforms.records import REJECTED, STATS, TOO_MANY_TOKENS, rejection
from seqbeam.transforms.retry import error_message, single_rows
from seqbeam.transforms.sinks import INFERENCE_ERROR

STAGE_INFER = "infer"
STAGE_POSTPROCESS = "postprocess"

# ---------------------------------------------------------------------------------------
# Text helpers

# The end of a sentence: terminal punctuation, closing quotes or brackets, then whitespace.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+")


def split_sentences(text: str) -> tuple[str, ...]:
    """The text cut after each sentence; the pieces keep their whitespace and join back to ``text``."""
    if not _SENTENCE_END.search(text):
        return (text,)
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() < len(text):
            pieces.append(text[start : match.end()])
            start = match.end()
    pieces.append(text[start:])
    return tuple(pieces)


def emojify(pieces: Sequence[str], emojis: Sequence[Optional[str]]) -> str:
    """The text with each sentence's emoji (None = none) written after it, whitespace kept."""
    out = []
    for piece, emoji in zip(pieces, emojis):
        if emoji is None:
            out.append(piece)
            continue
        sentence = piece.rstrip()
        out.append(f"{sentence} {emoji}{piece[len(sentence):]}")
    return "".join(out)


_SPACE_BEFORE = re.compile(r"\s+([.,!?;:%)\]}»…])")
_SPACE_AFTER = re.compile(r"([¿¡(\[{«])\s+")
_SPACED_APOSTROPHE = re.compile(r"(\w) ' (\w)")


def detokenize(text: str) -> str:
    """Undoes the word tokenizer's spacing of punctuation: ``¿ dónde está ?`` -> ``¿dónde está?``."""
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    return _SPACED_APOSTROPHE.sub(r"\1'\2", text)


# Weekday words and abbreviations a date string may contain -> Monday=0 .. Sunday=6.
_WEEKDAY_WORDS = {
    **{name.lower(): i for i, name in enumerate(WEEKDAYS)},
    **{name[:3].lower(): i for i, name in enumerate(WEEKDAYS)},
    "tues": 1, "weds": 2, "thur": 3, "thurs": 3,
}
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_WORD = re.compile(r"[^\W\d_]+")


class DateCheck(NamedTuple):
    """What :func:`check_date` concludes of a model output."""

    iso_date: Optional[str]
    valid: bool
    flag: Optional[str]


def check_date(output: str, raw: str) -> DateCheck:
    """Checks a model's ISO output against the calendar and against any weekday the input names.

    ``iso_date`` is None unless ``output`` is a real calendar date; ``valid`` is False, with a
    ``flag`` saying why, for a non-date (``2019-02-30``) or a date whose weekday is not the one
    written in the input (or an input naming two different weekdays).
    """
    match = _ISO_DATE.fullmatch(output)
    if not match:
        return DateCheck(None, False, f"not_a_date: the model wrote {output!r}")
    try:
        date = datetime.date(*map(int, match.groups()))
    except ValueError:
        return DateCheck(None, False, f"not_a_date: {output} is not a calendar date")
    named = sorted({_WEEKDAY_WORDS[w] for w in _WORD.findall(raw.lower()) if w in _WEEKDAY_WORDS})
    if len(named) > 1:
        days = " and ".join(calendar.day_name[d] for d in named)
        return DateCheck(output, False, f"weekday_conflict: the input names {days}")
    if named and named[0] != date.weekday():
        return DateCheck(output, False, f"weekday_mismatch: the input says {calendar.day_name[named[0]]}, "
                                        f"{output} is a {calendar.day_name[date.weekday()]}")
    return DateCheck(output, True, None)


def name_key(name: str) -> str:
    """How names are compared for novelty: NFKC, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


# ---------------------------------------------------------------------------------------
# Output formats, one per task


class Outcome(NamedTuple):
    """What became of one result: a row, or a rejected record."""

    row: Optional[dict]
    rejected: Optional[dict] = None
    low_confidence: bool = False
    truncated: bool = False


class OutputFormat:
    """Turns keyed PredictionResults of one task into rows of ``schema``."""

    schema: pa.Schema
    # The signature outputs the rows are made of.
    outputs: tuple[str, ...] = ("text", "score", "tokens")

    def __init__(self, max_tokens: int, overflow: str, min_confidence: float):
        self.max_tokens = max_tokens
        self.overflow = overflow
        self.min_confidence = min_confidence

    def outcome(self, key: str, result: Any, known: frozenset = frozenset()) -> Outcome:
        """The row (or rejection) of one result; ``known``: the training names (names task only)."""
        raise NotImplementedError

    def outcomes_table(self, results: list, known: frozenset) -> tuple[Optional[pa.Table], list[dict], tuple]:
        """(table of the rows or None, rejected records, (low confidence, truncated, flagged) counts)
        of a list of ``(id, PredictionResult)``: :meth:`outcome` row by row, then one table."""
        rows, rejected = [], []
        low = truncated = flagged = 0
        for key, result in results:
            row, record, is_low, is_truncated = self.outcome(key, result, known)
            if record is not None:
                rejected.append(record)
                continue
            rows.append(row)
            low += is_low
            truncated += is_truncated
            flagged += row.get("valid") is False
        table = pa.Table.from_pylist(rows, schema=self.schema) if rows else None
        return table, rejected, (low, truncated, flagged)

    def input_text(self, example: Any) -> str:
        """The row's input as written in the corpus (for rejected records)."""
        return example if isinstance(example, str) else "".join(example)

    def too_many_tokens(self, key: str, example: Any, tokens: Iterable[int]) -> tuple[Optional[dict], bool]:
        """(rejected record or None, truncated) from the token counts of the model inputs."""
        longest = max(tokens)
        if longest <= self.max_tokens:
            return None, False
        if self.overflow == "reject":
            return rejection(key, self.input_text(example), STAGE_INFER, TOO_MANY_TOKENS,
                             f"{longest} tokens > the model's {self.max_tokens}"), False
        return None, True

    def decoded(self, key: str, result: Any) -> tuple[Optional[dict], str, float, bool]:
        """(rejected record or None, decoded text, score, truncated) of a seq2seq result."""
        out = result.inference
        rejected, truncated = self.too_many_tokens(key, result.example, [out["tokens"]])
        return rejected, out["text"].decode("utf-8"), float(out["score"]), truncated


def _text_fields(*names: str) -> list[pa.Field]:
    return [pa.field(name, pa.string(), nullable=False) for name in names]


_MODEL_VERSION = pa.field("model_version", pa.string(), nullable=False)
_TRUNCATED = pa.field("truncated", pa.bool_(), nullable=False)


class EmojiOutputs(OutputFormat):
    """Emoji tagging: every sentence tagged, its emoji inserted after it when probable enough."""

    schema = pa.schema([
        *_text_fields("id", "text", "emojified_text"),
        pa.field("sentences", pa.list_(pa.struct([
            pa.field("text", pa.string(), nullable=False),
            pa.field("label", pa.int64(), nullable=False),
            pa.field("emoji", pa.string(), nullable=False),
            pa.field("probability", pa.float32(), nullable=False),
        ])), nullable=False),
        _TRUNCATED,
        _MODEL_VERSION,
    ])
    outputs = ("label", "emoji", "probability", "tokens")

    def __init__(self, max_tokens: int, overflow: str, min_confidence: float, threshold: float):
        super().__init__(max_tokens, overflow, min_confidence)
        self.threshold = threshold

    def outcome(self, key, result, known=frozenset()):
        pieces, out = result.example, result.inference
        rejected, truncated = self.too_many_tokens(key, pieces, out["tokens"])
        if rejected:
            return Outcome(None, rejected)
        threshold = self.threshold
        emojis = [e.decode("utf-8") for e in out["emoji"]]
        probabilities = out["probability"]
        sentences = [
            {"text": piece.strip(), "label": label, "emoji": emoji, "probability": probability}
            for piece, label, emoji, probability in zip(pieces, out["label"], emojis, probabilities)
        ]
        inserted = [e if p >= threshold else None for e, p in zip(emojis, probabilities)]
        row = {"id": key, "text": "".join(pieces), "emojified_text": emojify(pieces, inserted),
               "sentences": sentences, "truncated": truncated, "model_version": result.model_id}
        return Outcome(row, None, min(probabilities) < self.min_confidence, truncated)

    def outcomes_table(self, results, known):
        """The table built column by column (:mod:`seqbeam.transforms.emoji_table`), no row dicts;
        ``results`` may also be one result of a whole ``SentenceBatch``."""
        from seqbeam.transforms.emoji_table import emoji_batch_table, emoji_outcomes_table

        if isinstance(results, PredictionResult):
            return emoji_batch_table(self, results)
        return emoji_outcomes_table(self, results)


class ReberOutputs(OutputFormat):
    """Grammar classification: grammatical or not, with the probability of grammatical."""

    schema = pa.schema([*_text_fields("id", "text"), pa.field("grammatical", pa.bool_(), nullable=False),
                        pa.field("probability", pa.float32(), nullable=False), _TRUNCATED, _MODEL_VERSION])
    outputs = ("label", "probability", "tokens")

    def outcome(self, key, result, known=frozenset()):
        out = result.inference
        rejected, truncated = self.too_many_tokens(key, result.example, [out["tokens"]])
        if rejected:
            return Outcome(None, rejected)
        probability = float(out["probability"])
        row = {"id": key, "text": result.example, "grammatical": bool(out["label"]), "probability": probability,
               "truncated": truncated, "model_version": result.model_id}
        # Confidence in the decision taken, whichever class it is.
        return Outcome(row, None, max(probability, 1 - probability) < self.min_confidence, truncated)


class TranslationOutputs(OutputFormat):
    """Translation: the decoded text (punctuation re-attached for word-level models) and its score."""

    schema = pa.schema([*_text_fields("id", "source", "translation"),
                        pa.field("score", pa.float32(), nullable=False), _TRUNCATED, _MODEL_VERSION])

    def __init__(self, max_tokens: int, overflow: str, min_confidence: float, word_level: bool):
        super().__init__(max_tokens, overflow, min_confidence)
        self.word_level = word_level

    def outcome(self, key, result, known=frozenset()):
        rejected, text, score, truncated = self.decoded(key, result)
        if rejected:
            return Outcome(None, rejected)
        row = {"id": key, "source": result.example, "translation": detokenize(text) if self.word_level else text,
               "score": score, "truncated": truncated, "model_version": result.model_id}
        return Outcome(row, None, math.exp(score) < self.min_confidence, truncated)


class DateOutputs(OutputFormat):
    """Date normalization: the ISO date, checked against the calendar and the input's weekday."""

    schema = pa.schema([
        *_text_fields("id", "raw"),
        pa.field("iso_date", pa.string(), nullable=True),
        pa.field("valid", pa.bool_(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        # Why a row is not valid; null when it is.
        pa.field("flag", pa.string(), nullable=True),
        # What the model wrote, kept for flagged rows.
        pa.field("output", pa.string(), nullable=False),
        _TRUNCATED,
        _MODEL_VERSION,
    ])

    def outcome(self, key, result, known=frozenset()):
        rejected, output, score, truncated = self.decoded(key, result)
        if rejected:
            return Outcome(None, rejected)
        raw = strip_day_order(result.example)  # a generated row's own day-order token is no part of the date
        iso_date, valid, flag = check_date(output, raw)
        row = {"id": key, "raw": raw, "iso_date": iso_date, "valid": valid, "score": score,
               "flag": flag, "output": output, "truncated": truncated, "model_version": result.model_id}
        return Outcome(row, None, math.exp(score) < self.min_confidence, truncated)


class NameOutputs(OutputFormat):
    """Sampled names: capitalised, flagged novel when not among the training names."""

    schema = pa.schema([*_text_fields("id", "name"), pa.field("novel", pa.bool_(), nullable=False),
                        pa.field("score", pa.float32(), nullable=False), _MODEL_VERSION])
    outputs = ("text", "score")

    def outcome(self, key, result, known=frozenset()):
        text = result.inference["text"].decode("utf-8").strip()
        if not text:
            return Outcome(None, rejection(key, result.example.text, STAGE_POSTPROCESS, "empty_sample",
                                           "the model ended the name before its first character"))
        row = {"id": key, "name": text[:1].upper() + text[1:], "novel": name_key(text) not in known,
               "score": float(result.inference["score"]), "model_version": result.model_id}
        return Outcome(row)

    def input_text(self, example):
        return example.text


# Keys of the count dicts PostprocessBatches emits on its ``stats`` output.
POSTPROCESS_COUNTS = ("out", "low_confidence", "truncated", "flagged")


class PostprocessBatches(beam.DoFn):
    """Lists of ``(id, PredictionResult)`` -> an Arrow table of prediction rows per list.

    Tagged output ``rejected``: the records of results that fail validation. Tagged output
    ``stats`` (``records.STATS``): one dict per list of the :data:`POSTPROCESS_COUNTS`
    (``out``: rows in the table; ``flagged``: rows whose ``valid`` is false). They are
    outputs, not counters, so that a list that fails and is retried row by row
    (:class:`~seqbeam.transforms.retry.RetryRowByRow` drops every output of the failed
    attempt), or a bundle a runner retries, is counted once. The same counts also go to
    ``infer`` counters (``rows_out``, ``rows_rejected``, ...), for the runner's UI only:
    those include retried attempts. ``known`` (names only) is a side input of training names.
    """

    def __init__(self, output_format: OutputFormat):
        self._format = output_format
        self._counters = {name: beam.metrics.Metrics.counter("infer", name)
                          for name in ("rows_out", "rows_rejected", "low_confidence", "truncated", "flagged")}

    def process(self, results: list, known: Optional[frozenset] = None):
        # The table is built before anything is counted: a batch that fails here is retried
        # row by row (transforms/retry.py) and must not have been counted once already.
        table, rejected, (low, truncated, flagged) = self._format.outcomes_table(results, known or frozenset())
        for record in rejected:
            yield beam.pvalue.TaggedOutput(REJECTED, record)
        rows = table.num_rows if table is not None else 0
        counts = {"rows_out": rows, "rows_rejected": len(rejected), "low_confidence": low,
                  "truncated": truncated, "flagged": flagged}
        for name, count in counts.items():
            if count:
                self._counters[name].inc(count)
        if table is not None:
            yield table
        yield beam.pvalue.TaggedOutput(STATS, dict(zip(POSTPROCESS_COUNTS, (rows, low, truncated, flagged))))


def result_inputs(results: Any) -> list[tuple[str, str]]:
    """``(id, input text)`` of a list of keyed PredictionResults (or one result of a whole batch of
    rows), for rejected records."""
    if isinstance(results, PredictionResult):
        return results.example.inputs()
    return [(key, _example_text(result.example)) for key, result in results]


def single_results(results: Any) -> list:
    """One-row batches of a list of keyed PredictionResults, or of one result of a whole
    ``SentenceBatch`` (its inference: arrays over the batch's sentences)."""
    if not isinstance(results, PredictionResult):
        return single_rows(results)
    batch, owners = results.example, results.example.owners
    return [PredictionResult(batch.take([i]), {name: values[owners[i]:owners[i + 1]]
                                               for name, values in results.inference.items()}, results.model_id)
            for i in range(len(batch))]


def failed_inference_rejections(failure: tuple) -> list[dict]:
    """Rejected records for every row of a batch whose model call raised (RunInference's dead letters).

    ``failure`` is ``(batch, error)``; Beam gives the error as ``(type, repr, traceback lines)``.
    """
    batch, error = failure
    if isinstance(error, tuple):
        detail = error_message(*error)
    else:
        detail = f"{type(error).__name__}: {error}"
    return [rejection(key, _example_text(example), STAGE_INFER, INFERENCE_ERROR, detail[:500])
            for key, example in batch]


def _example_text(example: Any) -> str:
    if isinstance(example, str):
        return example
    if isinstance(example, tuple):
        return "".join(example)
    return getattr(example, "text", repr(example))
