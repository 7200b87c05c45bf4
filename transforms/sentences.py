"""The emoji job's rows cut into sentences, column by column, from the row checks to the table.

A :class:`SentenceBatch` holds a batch of rows as Arrow arrays (ids, texts) and the flat
array of all their sentences with each row's offsets into it: the model is called on the
flat array at once, its outputs stay numpy arrays over the same sentences, and the
prediction table is built from them (``transforms/emoji_table.py``), with no Python object
per row or per sentence on the way. :func:`split_sentences_column` cuts texts exactly as
``postprocess.split_sentences`` does, with Arrow's regex kernels. :class:`SentenceBuckets`
groups rows of similar length into model batches, as ``inference.LengthBucketBatches``
does for lists of keyed examples.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.transforms import window

from seqbeam.transforms.arrow_lines import PYTHON_WHITESPACE
from seqbeam.transforms.postprocess import split_sentences

# A separator no text holds once texts with it are set aside (they are cut in Python).
_CUT = "\x00"
# postprocess._SENTENCE_END for RE2: Python's \s (str.isspace) spelled out, RE2's \s is ASCII only.
_WHITESPACE_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in PYTHON_WHITESPACE)
_SENTENCE_END = "([.!?\u2026]+[\"'\u201d\u2019\u00bb)\\]]*[" + _WHITESPACE_CLASS + "]+)"


def split_sentences_column(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(every sentence of every text, flat; each text's offsets into it) of a string array without nulls.

    Text ``i`` is cut into ``sentences[offsets[i]:offsets[i + 1]]``, what
    ``split_sentences(texts[i])`` gives: pieces that keep their whitespace and join back to it.
    """
    if len(texts) and pc.any(pc.match_substring(texts, _CUT)).as_py():
        pieces = [split_sentences(text) for text in texts.to_pylist()]
        counts = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        flat = pa.array([piece for row in pieces for piece in row], pa.string())
        return flat, np.concatenate(([0], np.cumsum(counts)))
    marked = pc.replace_substring_regex(texts, pattern=_SENTENCE_END, replacement="\\1" + _CUT)
    # A sentence end that ends the text cuts nothing off.
    marked = pc.replace_substring_regex(marked, pattern=_CUT + "$", replacement="")
    lists = pc.split_pattern(marked, pattern=_CUT)
    offsets = lists.offsets.to_numpy().astype(np.int64)
    return lists.flatten(), offsets - offsets[0]


def _string_array(values) -> pa.Array:
    """A plain ``string`` array (one chunk) of an Arrow array, chunked array or Python list."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values, pa.string())
    return values if values.type == pa.string() else values.cast(pa.string())


@dataclasses.dataclass
class SentenceBatch:
    """Rows of the emoji job, column by column: row ``i`` has id ``ids[i]``, text ``texts[i]`` and the
    sentences ``sentences[owners[i]:owners[i + 1]]`` (at least one: the pieces of its text).

    Iterating gives each row's ``(id, pieces)``, as the keyed lists of the other tasks hold
    their rows (rejected records of a failed batch, tests).
    """

    ids: pa.Array
    texts: pa.Array
    sentences: pa.Array
    owners: np.ndarray

    @classmethod
    def of_texts(cls, ids, texts) -> "SentenceBatch":
        """The batch of rows ``ids`` / ``texts`` (Arrow arrays or lists), each text cut into its sentences."""
        texts = _string_array(texts)
        sentences, owners = split_sentences_column(texts)
        return cls(_string_array(ids), texts, sentences, owners)

    @classmethod
    def concat(cls, batches: Sequence["SentenceBatch"]) -> "SentenceBatch":
        """The rows of several batches, in order."""
        if len(batches) == 1:
            return batches[0]
        owners, base = [np.zeros(1, np.int64)], 0
        for batch in batches:
            owners.append(batch.owners[1:] + base)
            base += int(batch.owners[-1])
        return cls(pa.concat_arrays([b.ids for b in batches]), pa.concat_arrays([b.texts for b in batches]),
                   pa.concat_arrays([b.sentences for b in batches]), np.concatenate(owners))

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        sentences = self.sentences.to_pylist()
        owners = self.owners.tolist()
        for i, row_id in enumerate(self.ids.to_pylist()):
            yield row_id, tuple(sentences[owners[i]:owners[i + 1]])

    def inputs(self) -> list[tuple[str, str]]:
        """``(id, text)`` of every row, for rejected records."""
        return list(zip(self.ids.to_pylist(), self.texts.to_pylist()))

    def sentence_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the sentence indices of ``rows``, in order; their offsets as a batch of those rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.owners[rows]
        counts = self.owners[rows + 1] - starts
        owners = np.concatenate(([0], np.cumsum(counts)))
        return np.arange(owners[-1]) - np.repeat(owners[:-1] - starts, counts), owners

    def take(self, rows: np.ndarray) -> "SentenceBatch":
        """The batch of ``rows`` (indices), in that order."""
        indices, owners = self.sentence_rows(rows)
        rows = pa.array(np.asarray(rows, dtype=np.int64))
        return SentenceBatch(self.ids.take(rows), self.texts.take(rows), self.sentences.take(pa.array(indices)),
                             owners)

    def longest(self) -> np.ndarray:
        """Characters of each row's longest sentence (what length-aware batching groups on)."""
        if not len(self):
            return np.zeros(0, np.int64)
        lengths = pc.utf8_length(self.sentences).to_numpy(zero_copy_only=False)
        return np.maximum.reduceat(lengths, self.owners[:-1])


class SentenceBuckets(beam.DoFn):
    """:class:`SentenceBatch` elements -> batches of up to ``batch_size`` rows of similar length.

    A row goes to the bucket of the first bound >= its longest sentence (the last bucket
    holds the rest; no bounds: one bucket); a bucket is emitted each time it holds
    ``batch_size`` rows, and what is left when the bundle ends.
    """

    def __init__(self, bounds: Sequence[int], batch_size: int):
        self._bounds = np.asarray(list(bounds), dtype=np.int64)
        self._batch_size = batch_size

    def start_bundle(self):
        self._buckets: list[list[SentenceBatch]] = [[] for _ in range(len(self._bounds) + 1)]
        self._sizes = [0] * len(self._buckets)

    def process(self, batch: SentenceBatch):
        if len(self._bounds):
            bucket_of = np.searchsorted(self._bounds, batch.longest(), side="left")
        else:
            bucket_of = np.zeros(len(batch), np.int64)
        for bucket in np.unique(bucket_of).tolist():
            rows = np.flatnonzero(bucket_of == bucket)
            yield from self._add(bucket, batch if len(rows) == len(batch) else batch.take(rows))

    def _add(self, bucket: int, part: SentenceBatch) -> Iterator[SentenceBatch]:
        self._buckets[bucket].append(part)
        self._sizes[bucket] += len(part)
        if self._sizes[bucket] < self._batch_size:
            return
        pending = SentenceBatch.concat(self._buckets[bucket])
        start = 0
        while len(pending) - start >= self._batch_size:
            yield pending.take(np.arange(start, start + self._batch_size))
            start += self._batch_size
        rest = len(pending) - start
        self._buckets[bucket] = [pending.take(np.arange(start, len(pending)))] if rest else []
        self._sizes[bucket] = rest

    def finish_bundle(self):
        for parts in self._buckets:
            if parts:
                yield window.GlobalWindows.windowed_value(SentenceBatch.concat(parts))
        self._buckets = []
