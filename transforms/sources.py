"""Splittable file sources: line files by byte range, Parquet by row group.

A runner splits a big file across workers (and rebalances it while it runs) only if the
source can start reading anywhere. :class:`LineSource` reads a byte range the way Beam's
own ``textio`` does: a range that does not start at 0 begins at the first line that
starts at or after its start offset, and every line is claimed at its start offset
before it is emitted, so each line belongs to exactly one range. :class:`ParquetSource`
claims row groups at the offset of their first page. Both emit batches, not rows.

Line breaks are ``\\n``, ``\\r\\n`` and a lone ``\\r`` (what Python's universal newlines
split at); bytes that are not UTF-8 are decoded with ``surrogateescape`` so a bad line can
be rejected with its bytes while the rest of the file is read. A UTF-8 BOM at the start of
a file is skipped. Compressed files (gzip, bzip2, ...) cannot be read from the middle: Beam
reads each of them whole, in one range.
"""

from __future__ import annotations

import posixpath
import re
from typing import Iterator, NamedTuple, Optional, Sequence

from apache_beam.io import filebasedsource
from apache_beam.io.filesystem import CompressionTypes

_GLOB_CHARS = re.compile(r"[*?\[]")
_BOM = b"\xef\xbb\xbf"
_BLOCK = 1 << 20
# Initial splits are at most this fraction of the corpus (and at least _MIN_SPLIT bytes):
# a runner that hands out whole initial splits, like Beam's local runner, then keeps
# every worker busy on a single file; Dataflow rebalances splits while they run anyway.
_SPLITS_PER_CORPUS = 64
_MIN_SPLIT = 64 << 10


class LineBatch(NamedTuple):
    """Consecutive lines of one file: their start offsets and their text, line breaks removed.

    ``file`` is the file's name relative to the corpus folder (what row ids start with);
    ``header`` the file's first line when the format has a header, else None.
    """

    file: str
    header: Optional[str]
    offsets: list[int]
    lines: list[str]


class ParquetBatch(NamedTuple):
    """Consecutive records of one Parquet file; ``first_row`` is the 1-based row number of the first."""

    file: str
    first_row: int
    records: list[dict]


def glob_base(pattern: str) -> str:
    """The folder that row ids are relative to: the part of the pattern before any glob."""
    match = _GLOB_CHARS.search(pattern)
    prefix = pattern[: match.start()] if match else pattern
    return posixpath.dirname(prefix)


def relative_name(path: str, base: str) -> str:
    """``path`` named relative to ``base`` (its basename when it is not under it)."""
    base = base.rstrip("/")
    if base and path.startswith(base + "/"):
        return path[len(base) + 1 :]
    return posixpath.basename(path)


def is_compressed(path: str) -> bool:
    """Whether Beam reads ``path`` through a decompressor (and so cannot split it)."""
    return CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED


def decode_line(line: bytes) -> str:
    """A line's text: UTF-8, with bytes that are not UTF-8 kept as lone surrogates."""
    return line.decode("utf-8", "surrogateescape")


def iter_lines(stream, start: int = 0, block: int = _BLOCK) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of every line of a binary stream that starts at or after ``start``.

    Lines come without their line break. ``stream`` must be positioned at ``start - 1``
    when ``start > 0`` (that byte tells whether ``start`` begins a line), else at 0. A BOM
    at offset 0 is dropped from the first line (which keeps offset 0).
    """
    if start > 0:
        buffer, position = _skip_to_line_start(stream, start - 1)
        buffer = buffer or stream.read(block)
    else:
        buffer, position = stream.read(block), 0
    while buffer:
        more = stream.read(block)
        pieces = buffer.splitlines(keepends=True)
        # Unless the file ends here, the last piece may go on in the next block: no line break
        # yet, or a '\r' whose '\n' comes next.
        tail = pieces.pop() if more and not pieces[-1].endswith(b"\n") else b""
        for piece in pieces:
            line = piece.rstrip(b"\r\n")
            if position == 0 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            yield position, line
            position += len(piece)
        buffer = tail + more


def _skip_to_line_start(stream, before: int) -> tuple[bytes, int]:
    """Reads from offset ``before`` up to the first line start after it: (the rest of the block, its offset)."""
    buffer = stream.read(_BLOCK)
    position = before
    while buffer:
        breaks = [i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0]
        if not breaks:
            position += len(buffer)
            buffer = stream.read(_BLOCK)
            continue
        end = min(breaks) + 1
        if buffer[end - 1 : end] == b"\r":  # a '\r\n' is one break, and its '\n' may be in the next block
            if end == len(buffer):
                buffer, position = stream.read(_BLOCK), position + end
                return (buffer[1:], position + 1) if buffer.startswith(b"\n") else (buffer, position)
            end += buffer[end : end + 1] == b"\n"
        return buffer[end:], position + end
    return b"", position


class _FileSource(filebasedsource.FileBasedSource):
    """A file-based source whose initial splits are at most a 64th of the corpus (at least 64 KiB)."""

    def split(self, desired_bundle_size=None, start_position=None, stop_position=None):
        cap = max(_MIN_SPLIT, (self.estimate_size() or 0) // _SPLITS_PER_CORPUS)
        size = min(desired_bundle_size, cap) if desired_bundle_size else cap
        return super().split(size, start_position, stop_position)


class LineSource(_FileSource):
    """The lines of the files a pattern matches, as :class:`LineBatch` elements of up to ``batch_size`` lines.

    With ``header``, each file's first line is its header: it is not a row, and every batch
    of the file carries it (a range in the middle of a file reads it on its own).
    """

    def __init__(self, pattern: str, base: str, batch_size: int, header: bool = False):
        super().__init__(pattern, compression_type=CompressionTypes.AUTO, splittable=True, validate=False)
        self._base = base
        self._batch_size = batch_size
        self._header = header

    def read_records(self, file_name: str, range_tracker) -> Iterator[LineBatch]:
        name = relative_name(file_name, self._base)
        start = range_tracker.start_position()
        header = self._read_header(file_name) if self._header and start > 0 else None
        with self.open_file(file_name) as stream:
            if start > 0:
                stream.seek(start - 1)
            lines = iter_lines(stream, start)
            if self._header and start == 0:
                first = next(lines, None)
                if first is None:
                    return
                header = decode_line(first[1])
            offsets: list[int] = []
            texts: list[str] = []
            for offset, line in lines:
                if not range_tracker.try_claim(offset):
                    break
                offsets.append(offset)
                texts.append(decode_line(line))
                if len(offsets) == self._batch_size:
                    yield LineBatch(name, header, offsets, texts)
                    offsets, texts = [], []
            if offsets:
                yield LineBatch(name, header, offsets, texts)

    def _read_header(self, file_name: str) -> str:
        with self.open_file(file_name) as stream:
            first = next(iter_lines(stream, 0, block=4096), (0, b""))
        return decode_line(first[1])


class ParquetSource(_FileSource):
    """Records of Parquet files as :class:`ParquetBatch` elements; a file splits between its row groups.

    A row group is claimed at the offset of its first page, so a range holds the row groups
    that start in it. Only ``columns`` are read (those a file lacks are left out, for the
    row checks to name).
    """

    def __init__(self, pattern: str, base: str, columns: Sequence[str], batch_size: int):
        super().__init__(pattern, compression_type=CompressionTypes.UNCOMPRESSED, splittable=True, validate=False)
        self._base = base
        self._columns = list(columns)
        self._batch_size = batch_size

    def read_records(self, file_name: str, range_tracker) -> Iterator[ParquetBatch]:
        import pyarrow.parquet as pq

        name = relative_name(file_name, self._base)
        start = range_tracker.start_position()
        with self.open_file(file_name) as stream:
            parquet = pq.ParquetFile(stream)
            present = set(parquet.schema_arrow.names)
            columns = [c for c in self._columns if c in present]
            first_row = 1
            for index in range(parquet.metadata.num_row_groups):
                group = parquet.metadata.row_group(index)
                offset = row_group_offset(group)
                if offset >= start:
                    if not range_tracker.try_claim(offset):
                        break
                    for batch in parquet.iter_batches(batch_size=self._batch_size, row_groups=[index],
                                                      columns=columns):
                        records = batch.to_pylist() if columns else [{}] * batch.num_rows
                        yield ParquetBatch(name, first_row, records)
                        first_row += len(records)
                else:
                    first_row += group.num_rows


def row_group_offset(group) -> int:
    """Where a Parquet row group starts: the first page (dictionary or data) of its first column."""
    column = group.column(0)
    if column.has_dictionary_page and column.dictionary_page_offset is not None:
        return min(column.dictionary_page_offset, column.data_page_offset)
    return column.data_page_offset
