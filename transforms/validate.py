"""Row validation (one set of checks for every job) and train/valid/test assignment.

Checks what a task needs of a row before any tokenization (text present and not
absurdly long, target present, label an integer in range) and gives it its split from a
hash of its id: the same id lands in the same split on every runner and every rerun.
Preprocessing runs :class:`ValidateBatches`; inference runs :class:`KeyExamples`, whose
text check is the same :func:`text_problem`, so a text is judged alike by both jobs.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Optional

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqbeam.configs.schema import Config, SplitConfig
from seqbeam.transforms.arrow_lines import python_strip
from seqbeam.transforms.records import REJECTED, STAGE_VALIDATE, STATS, Row, RowBatch, rejection, rows_of
from seqbeam.transforms.sentences import SentenceBatch

TOO_MANY_CHARS = "too_many_chars"


def assign_split(row_id: str, splits: SplitConfig) -> str:
    """'train', 'valid' or 'test' from a salted hash of the id and the split fractions."""
    digest = hashlib.blake2b(f"{splits.salt}:{row_id}".encode("utf-8"), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2**64
    if point < splits.train:
        return "train"
    if point < splits.train + splits.valid:
        return "valid"
    return "test"


def assign_splits(row_ids: list[str], splits: SplitConfig) -> list[str]:
    """:func:`assign_split` of every id, the comparisons done by numpy."""
    salt = f"{splits.salt}:".encode("utf-8")
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(salt + row_id.encode("utf-8"), digest_size=8).digest() for row_id in row_ids])
    # uint64 -> float64 rounds as int / 2**64 does: the division by a power of two is exact.
    points = np.frombuffer(digests, dtype=">u8").astype(np.float64) / 2.0**64
    names = np.array(["train", "valid", "test"], dtype=object)
    return names[(points >= splits.train).astype(np.int8) + (points >= splits.train + splits.valid)].tolist()


def text_problem(text: Optional[str], max_chars: int, key: str,
                 field: str = "text") -> Optional[tuple[str, str]]:
    """(code, detail) when ``text`` is missing, blank or longer than ``max_chars``, else None.

    ``key`` is the config key of the limit (``preprocess.max_chars``, ``infer.max_chars``),
    named in the detail; ``field`` is ``"text"`` or ``"target"`` (code ``empty_target``).
    """
    if text is None or not text.strip():
        return f"empty_{field}", ""
    if len(text) > max_chars:
        of = "" if field == "text" else f"{field} of "
        return TOO_MANY_CHARS, f"{of}{len(text)} characters > {key} {max_chars}"
    return None


def texts_ok(texts: pa.Array, max_chars: int) -> pa.Array:
    """Where :func:`text_problem` finds nothing wrong with a text, for a whole string array (a null is not fine)."""
    present = pc.greater(pc.utf8_length(python_strip(texts)), 0)
    return pc.fill_null(pc.and_(present, pc.less_equal(pc.utf8_length(texts), max_chars)), False)


_INTEGER = re.compile(r"-?[0-9]+")
_MAX_LABEL_DIGITS = 18


def parse_label(value, num_classes: int) -> tuple[Optional[int], str]:
    """The label as an int in ``0..num_classes-1``, or None and why not."""
    if isinstance(value, bool):
        return None, f"label {value!r} is not an integer"
    if isinstance(value, int):
        label = value
    else:
        text = str(value).strip()
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if not _INTEGER.fullmatch(text):
            return None, f"label {value!r} is not an integer"
        digits = text.lstrip("-").lstrip("0")
        if len(digits) > _MAX_LABEL_DIGITS:  # int() refuses more than 4,300 digits; no class count needs 19
            return None, f"label {text[:12]}... ({len(digits)} digits) outside 0..{num_classes - 1}"
        label = int(text)
    if not 0 <= label < num_classes:
        return None, f"label {label} outside 0..{num_classes - 1}"
    return label, ""


_PREPROCESS_MAX_CHARS = "preprocess.max_chars"


class ValidateBatches(beam.DoFn):
    """Validates a batch of rows and gives each its split.

    Main output: the valid rows as a :class:`RowBatch`. Tagged outputs: ``rejected`` (one record per
    invalid row, with a specific reason) and ``stats`` (rows read, for the accounting).
    """

    def __init__(self, config: Config):
        self._kind = config.task.kind
        self._num_classes = config.task.num_classes
        self._max_chars = config.preprocess.max_chars
        self._splits = config.preprocess.splits
        self._rejected = beam.metrics.Metrics.counter("validate", "rows_rejected")

    def process(self, rows: list[Row] | pa.Table):
        if isinstance(rows, pa.Table):
            yield from self._process_table(rows)
            return
        valid = RowBatch([], [], [], [], [])
        for row in rows:
            label, problem = self._check(row)
            if problem:
                self._rejected.inc()
                code, detail = problem
                yield beam.pvalue.TaggedOutput(REJECTED, rejection(row.id, row.raw(), STAGE_VALIDATE, code, detail))
                continue
            valid.append(row, label=label, split=assign_split(row.id, self._splits))
        yield beam.pvalue.TaggedOutput(STATS, {"read": len(rows)})
        if len(valid):
            yield valid

    def _process_table(self, table: pa.Table):
        """What :meth:`process` gives for the same rows, the checks done column by column.

        Rows the vectorized checks pass are valid; the others (few) go through :meth:`_check`,
        which gives the reason, in row order.
        """
        n = table.num_rows
        ok = texts_ok(table.column("text"), self._max_chars)
        if self._kind == "seq2seq":
            ok = pc.and_(ok, texts_ok(table.column("target"), self._max_chars))
        labels = table.column("label") if "label" in table.column_names else pa.nulls(n, pa.string())
        if self._kind == "classifier":
            parsed, label_ok = self._labels(labels)
            ok = pc.and_(ok, label_ok)
            label_values = parsed.to_pylist()
        else:
            label_values = labels.to_pylist()
        ids = table.column("id").to_pylist()
        texts = table.column("text").to_pylist()
        targets = table.column("target").to_pylist() if "target" in table.column_names else [None] * n
        splits = assign_splits(ids, self._splits)
        good = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
        if good.all():
            valid = RowBatch(ids, texts, targets, label_values, splits)
        else:
            valid = RowBatch([], [], [], [], [])
            raw_labels = labels.to_pylist()
            for i in range(n):
                label = label_values[i]
                if not good[i]:
                    row = Row(ids[i], texts[i], targets[i], raw_labels[i])
                    label, problem = self._check(row)
                    if problem:
                        self._rejected.inc()
                        yield beam.pvalue.TaggedOutput(
                            REJECTED, rejection(row.id, row.raw(), STAGE_VALIDATE, *problem))
                        continue
                valid.ids.append(ids[i])
                valid.texts.append(texts[i])
                valid.targets.append(targets[i])
                valid.labels.append(label)
                valid.splits.append(splits[i])
        yield beam.pvalue.TaggedOutput(STATS, {"read": n})
        if len(valid):
            yield valid

    def _labels(self, labels: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(labels as int64, where :func:`parse_label` takes them as they are) of string labels."""
        stripped = python_strip(labels.cast(pa.string()))
        digits = pc.and_(pc.match_substring_regex(stripped, r"^-?[0-9]+$"),
                         pc.less_equal(pc.utf8_length(stripped), _MAX_LABEL_DIGITS))
        digits = pc.fill_null(digits, False)
        values = pc.cast(pc.if_else(digits, stripped, "-1"), pa.int64())
        in_range = pc.and_(pc.greater_equal(values, 0), pc.less(values, self._num_classes))
        return values, pc.and_(digits, in_range)

    def _check(self, row: Row) -> tuple[Any, Optional[tuple[str, str]]]:
        """(the row's label, parsed for classifiers; (code, detail) of what is wrong, or None)."""
        problem = text_problem(row.text, self._max_chars, _PREPROCESS_MAX_CHARS)
        if problem:
            return None, problem
        if self._kind == "seq2seq":
            problem = text_problem(row.target, self._max_chars, _PREPROCESS_MAX_CHARS, field="target")
            if problem:
                return None, problem
        if self._kind != "classifier":
            return row.label, None
        if row.label is None:
            return None, ("missing_label", "")
        label, why = parse_label(row.label, self._num_classes)
        return label, (None if label is not None else ("bad_label", why))


class KeyExamples(beam.DoFn):
    """Lists of Rows (or reader tables) -> lists of ``(id, text)`` the model can take; rejected: what it cannot.

    With ``sentences`` (emoji tagging) the rows kept are one :class:`SentenceBatch` instead,
    each text cut into its sentences, column by column. Texts are checked by
    :func:`text_problem` against ``infer.max_chars``, as preprocessing checks them against
    ``preprocess.max_chars``. Tagged output ``stats``: ``{"read": rows}`` per list, the
    rows that came through reading.
    """

    def __init__(self, max_chars: int, sentences: bool):
        self._max_chars = max_chars
        self._sentences = sentences
        self._rows_in = beam.metrics.Metrics.counter("infer", "rows_in")

    def process(self, rows: list[Row] | pa.Table):
        if self._sentences:
            yield from self._sentence_batch(rows)
            return
        rows = rows_of(rows)
        self._rows_in.inc(len(rows))
        keyed = []
        for row in rows:
            problem = text_problem(row.text, self._max_chars, "infer.max_chars")
            if problem:
                yield self._rejection(row.id, row.text, problem)
            else:
                keyed.append((row.id, row.text))
        if keyed:
            yield keyed
        yield beam.pvalue.TaggedOutput(STATS, {"read": len(rows)})

    def _sentence_batch(self, rows: list[Row] | pa.Table):
        """The rows as a :class:`SentenceBatch`, checked column by column; the few bad ones judged by
        :func:`text_problem`, which gives their reason."""
        if isinstance(rows, pa.Table):
            ids, texts = rows.column("id").combine_chunks(), rows.column("text").combine_chunks()
        else:
            ids = pa.array([row.id for row in rows], pa.string())
            texts = pa.array([row.text for row in rows], pa.string())
        n = len(ids)
        self._rows_in.inc(n)
        good = np.asarray(texts_ok(texts, self._max_chars).to_numpy(zero_copy_only=False), dtype=bool)
        if not good.all():
            bad = np.flatnonzero(~good)
            for row_id, text in zip(ids.take(bad).to_pylist(), texts.take(bad).to_pylist()):
                yield self._rejection(row_id, text, text_problem(text, self._max_chars, "infer.max_chars"))
            kept = pa.array(np.flatnonzero(good))
            ids, texts = ids.take(kept), texts.take(kept)
        if len(ids):
            yield SentenceBatch.of_texts(ids, texts)
        yield beam.pvalue.TaggedOutput(STATS, {"read": n})

    @staticmethod
    def _rejection(row_id: str, text: Optional[str], problem: tuple[str, str]) -> beam.pvalue.TaggedOutput:
        return beam.pvalue.TaggedOutput(REJECTED, rejection(row_id, text, STAGE_VALIDATE, *problem))
