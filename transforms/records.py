"""The row that flows through the pipelines and the rejected record that leaves them.

Every input row ends in exactly one place: an output row, or a rejected record carrying
its id, its raw input, the stage that rejected it and the reason.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable, Iterator, NamedTuple, Optional

import apache_beam as beam

# Tag of the dead-letter output of every DoFn that can reject a row.
REJECTED = "rejected"
# Tag of the per-batch count dicts that are summed into metadata.json.
STATS = "stats"

# Pipeline stages, in order; a rejected record names the one that rejected it.
STAGE_READ = "read"
STAGE_VALIDATE = "validate"
STAGE_ENCODE = "encode"

SPLITS = ("train", "valid", "test")

# A row with more tokens than the model takes, in preprocessing (``preprocess.overflow:
# reject``) and in inference (``infer.overflow: reject``) alike.
TOO_MANY_TOKENS = "too_many_tokens"


class Row(NamedTuple):
    """One corpus row: its stable id, its text and, per task, a target or a label."""

    id: str
    text: str
    target: Optional[str] = None
    label: Any = None
    split: str = ""

    def raw(self) -> str:
        """The row's input fields as one string, for rejected records of later stages."""
        fields = [self.text]
        if self.target is not None:
            fields.append(self.target)
        if self.label is not None:
            fields.append(str(self.label))
        return "\t".join(fields)


@dataclasses.dataclass
class RowBatch:
    """Validated rows stored column by column.

    Batches cross stage boundaries (and process boundaries on multi-worker runners) as
    one pickled object of five lists, far cheaper than one pickled tuple per row, and
    the text columns go to TensorFlow as they are.
    """

    ids: list[str]
    texts: list[str]
    targets: list[Optional[str]]
    labels: list[Any]
    splits: list[str]

    @classmethod
    def from_rows(cls, rows: list[Row]) -> "RowBatch":
        """Columns of a list of rows."""
        return cls(*(list(column) for column in zip(*rows))) if rows else cls([], [], [], [], [])

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, row: Row, label: Any, split: str) -> None:
        """Adds a row with its parsed label and its split."""
        self.ids.append(row.id)
        self.texts.append(row.text)
        self.targets.append(row.target)
        self.labels.append(label)
        self.splits.append(split)

    def row(self, index: int) -> Row:
        """Row ``index`` of the batch."""
        return Row(self.ids[index], self.texts[index], self.targets[index], self.labels[index], self.splits[index])


def rows_of(batch: Any) -> list[Row]:
    """The Rows of what a reader emits: a list of Rows, or a ``pyarrow.Table`` (columns ``id``,
    ``text`` and optional ``target``, ``label``) from the readers' Arrow fast path."""
    if isinstance(batch, list):
        return batch
    columns = batch.to_pydict()
    n = batch.num_rows
    nothing = [None] * n
    return [Row(id=i, text=t, target=g, label=lb) for i, t, g, lb in zip(
        columns["id"], columns["text"], columns.get("target", nothing), columns.get("label", nothing))]


def rejection(row_id: str, raw: Any, stage: str, code: str, detail: str = "") -> dict:
    """A rejected record: ``reason`` is ``code`` (stable, counted) plus a human detail.

    Raw bytes that are not valid UTF-8 are kept with ``\\xNN`` escapes, never decoded
    into something else.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    elif not isinstance(raw, str):
        raw = repr(raw)
    reason = f"{code}: {detail}" if detail else code
    return {"id": _utf8_safe(row_id), "raw": _utf8_safe(raw), "stage": stage, "code": code,
            "reason": _utf8_safe(reason)}


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8_safe(text: str) -> str:
    """``text`` with what UTF-8 cannot hold escaped, so the record can be written.

    A byte that was not UTF-8 (``surrogateescape`` made it U+DC80..U+DCFF) becomes ``\\xNN``;
    any other lone surrogate (JSON can spell them: ``"\\ud800"``, in a value or a key)
    becomes ``\\udNNN``.
    """
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def in_batches(outputs: Iterable[Any], batch_size: int) -> Iterator[Any]:
    """Rows grouped into lists of up to ``batch_size``; tagged outputs (rejections) pass as they come.

    Sources emit batches rather than rows: every element costs a Python pipeline a few
    microseconds per step, a million rows cost seconds.
    """
    batch = []
    for out in outputs:
        if isinstance(out, beam.pvalue.TaggedOutput):
            yield out
            continue
        batch.append(out)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
