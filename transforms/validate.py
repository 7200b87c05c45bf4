"""Row validation and train/valid/test assignment.

Checks what a task needs of a row before any tokenization (text present and not
absurdly long, target present, label an integer in range) and gives it its split from a
hash of its id: the same id lands in the same split on every runner and every rerun.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Optional

import apache_beam as beam

from seqbeam.pipelines.config import Config, SplitConfig
from seqbeam.transforms.records import REJECTED, STAGE_VALIDATE, STATS, Row, RowBatch, rejection


def assign_split(row_id: str, splits: SplitConfig) -> str:
    """'train', 'valid' or 'test' from a salted hash of the id and the split fractions."""
    digest = hashlib.blake2b(f"{splits.salt}:{row_id}".encode("utf-8"), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2**64
    if point < splits.train:
        return "train"
    if point < splits.train + splits.valid:
        return "valid"
    return "test"


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

    def process(self, rows: list[Row]):
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

    def _check(self, row: Row) -> tuple[Any, Optional[tuple[str, str]]]:
        """(the row's label, parsed for classifiers; (code, detail) of what is wrong, or None)."""
        if not row.text.strip():
            return None, ("empty_text", "")
        if len(row.text) > self._max_chars:
            return None, ("too_long", f"{len(row.text)} characters > max_chars {self._max_chars}")
        if self._kind == "seq2seq":
            if row.target is None or not row.target.strip():
                return None, ("empty_target", "")
            if len(row.target) > self._max_chars:
                return None, ("too_long", f"target of {len(row.target)} characters > max_chars {self._max_chars}")
        if self._kind != "classifier":
            return row.label, None
        if row.label is None:
            return None, ("missing_label", "")
        label, why = parse_label(row.label, self._num_classes)
        return label, (None if label is not None else ("bad_label", why))
