"""Aligned files: line i of the target file translating line i of the source, read as pairs.

The two files are read in step, as one stream, by one worker (``ReadCorpus`` spreads the
rows over the workers afterwards with a Reshuffle).
"""

from __future__ import annotations

import itertools
import posixpath

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from seqbeam.transforms.records import REJECTED, STAGE_READ, Row, in_batches, rejection
from seqbeam.transforms.sources import decode_line, iter_lines, undecodable_at


def _reject(row_id: str, raw: str, code: str, detail: str = "") -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput(REJECTED, rejection(row_id, raw, STAGE_READ, code, detail))


class ParseAlignedFiles(beam.DoFn):
    """Two files, line i of the target translating line i of the source.

    A row's id is the source file's name and the offset of its line there. Lines past
    the end of the shorter file are rejected (``unaligned``) under their own file's name.
    """

    def __init__(self, batch_size: int):
        self._batch_size = batch_size
        self._rows_in = beam.metrics.Metrics.counter("read", "rows_in")

    def process(self, paths: tuple[str, str]):
        yield from in_batches(self._parse_pair(paths), self._batch_size)

    def _parse_pair(self, paths: tuple[str, str]):
        names = [posixpath.basename(path) for path in paths]
        with FileSystems.open(paths[0]) as source, FileSystems.open(paths[1]) as target:
            for left, right in itertools.zip_longest(iter_lines(source), iter_lines(target)):
                self._rows_in.inc()
                if left is None or right is None:
                    name, (offset, line), missing = ((names[1], right, "source") if left is None
                                                     else (names[0], left, "target"))
                    yield _reject(f"{name}:{offset}", decode_line(line), "unaligned", f"no {missing} counterpart")
                    continue
                row_id = f"{names[0]}:{left[0]}"
                text, translation = decode_line(left[1]), decode_line(right[1])
                raw = f"{text}\t{translation}"
                if undecodable_at(raw) is not None:
                    yield _reject(row_id, raw, "undecodable", "bytes that are not UTF-8")
                elif not text.strip():
                    yield _reject(row_id, raw, "empty_line")
                else:
                    yield Row(id=row_id, text=text, target=translation)
