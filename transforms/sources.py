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

import numpy as np
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


class LineBlock(NamedTuple):
    """Consecutive lines of one file as the bytes that hold them, not yet decoded.

    ``data`` holds the lines with their line breaks (a file's BOM left out); line i is
    ``data[starts[i]:ends[i]]`` (its break excluded) and starts at byte ``offsets[i]`` of the
    file. ``file`` and ``header`` as in :class:`LineBatch`. A parser can hand ``data`` to a
    C++ reader at once, or decode the lines one by one (:meth:`decoded`).
    """

    file: str
    header: Optional[str]
    offsets: list[int]
    starts: list[int]
    ends: list[int]
    data: bytes

    def decoded(self) -> LineBatch:
        """The same lines as a :class:`LineBatch`: what :class:`LineSource` gave before blocks."""
        data = self.data
        return LineBatch(self.file, self.header, self.offsets,
                         [decode_line(data[s:e]) for s, e in zip(self.starts, self.ends)])


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


# What surrogateescape turns a byte that is not UTF-8 into.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def undecodable_at(line: str) -> Optional[int]:
    """Character offset of the first byte of a decoded line that was not UTF-8, or None."""
    match = _ESCAPED_BYTE.search(line)
    return match.start() if match else None


def iter_lines(stream, start: int = 0, block: int = _BLOCK) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of every line of a binary stream that starts at or after ``start``.

    Lines come without their line break. ``stream`` must be positioned at ``start - 1``
    when ``start > 0`` (that byte tells whether ``start`` begins a line), else at 0. A BOM
    at offset 0 is dropped from the first line (which keeps offset 0).
    """
    buffer, position = _first_read(stream, start, block)
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


def iter_line_spans(stream, start: int = 0, block: int = _BLOCK) -> Iterator[tuple[int, bytes, np.ndarray, np.ndarray, np.ndarray]]:
    """The lines :func:`iter_lines` gives, a buffer of whole lines at a time, found with numpy.

    Yields ``(position, buffer, offsets, starts, ends)``: ``buffer`` begins at file offset
    ``position``; line i starts at ``offsets[i]`` of the buffer (its id) and is
    ``buffer[starts[i]:ends[i]]``, its break excluded; the buffer's last line ends at its
    end. A BOM at offset 0 is left out of the first line (``starts[0]`` is then 3, its
    offset still 0). ``stream`` as for :func:`iter_lines`.
    """
    buffer, position = _first_read(stream, start, block)
    while buffer:
        more = stream.read(block)
        codes = np.frombuffer(buffer, dtype=np.uint8)
        lf, cr = codes == 10, codes == 13
        last_of_break = lf.copy()
        last_of_break[:-1] |= cr[:-1] & ~lf[1:]  # a CR alone; a CR then a LF is one break, ending at the LF
        if not more:
            last_of_break[-1] |= cr[-1]  # else its LF may open the next read: the line waits for it
        next_starts = np.flatnonzero(last_of_break) + 1
        if not more and (not next_starts.size or next_starts[-1] != len(buffer)):
            next_starts = np.append(next_starts, len(buffer))  # a last line without a break
        used = 0
        if next_starts.size:
            last = next_starts - 1
            crlf = lf[last] & cr[np.maximum(last - 1, 0)] & (last > 0)
            ends = next_starts - last_of_break[last] - crlf
            offsets = np.concatenate(([0], next_starts[:-1]))
            starts = offsets.copy()
            if position == 0 and buffer.startswith(_BOM):
                starts[0] = len(_BOM)
            used = int(next_starts[-1])
            yield position, buffer[:used], offsets, starts, ends
        position += used
        buffer = buffer[used:] + more


def _first_read(stream, start: int, block: int) -> tuple[bytes, int]:
    """The first read of a range: bytes from the first line start at or after ``start``, and their offset."""
    if start > 0:
        buffer, position = _skip_to_line_start(stream, start - 1)
        return buffer or stream.read(block), position
    return stream.read(block), 0


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

    def read_records(self, file_name: str, range_tracker) -> Iterator[LineBlock]:
        name = relative_name(file_name, self._base)
        start = range_tracker.start_position()
        header = self._read_header(file_name) if self._header and start > 0 else None
        pending = _PendingLines(self._batch_size)
        with self.open_file(file_name) as stream:
            if start > 0:
                stream.seek(start - 1)
            for position, buffer, offsets, starts, ends in iter_line_spans(stream, start, _BLOCK):
                first = 0
                if self._header and header is None:  # the file's first line: its header, not a row
                    header = decode_line(buffer[starts[0]:ends[0]])
                    first = 1
                claimed = first
                # Each line is claimed at its own offset, as textio does: a split can fall anywhere.
                for offset in (offsets[first:] + position).tolist():
                    if not range_tracker.try_claim(offset):
                        break
                    claimed += 1
                yield from pending.add(name, header, position, buffer, offsets[first:claimed],
                                       starts[first:claimed], ends[first:claimed])
                if claimed < len(offsets):
                    break
        yield from pending.flush(name, header)

    def _read_header(self, file_name: str) -> str:
        with self.open_file(file_name) as stream:
            first = next(iter_lines(stream, 0, block=4096), (0, b""))
        return decode_line(first[1])


class _PendingLines:
    """Claimed lines gathered into :class:`LineBlock` elements of exactly ``size`` lines (the last fewer).

    A block may join lines of two reads of the file: it keeps the pieces until it is full.
    """

    def __init__(self, size: int):
        self._size = size
        self._pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray, bytes]] = []
        self._count = 0

    def add(self, name: str, header: Optional[str], position: int, buffer: bytes, offsets: np.ndarray,
            starts: np.ndarray, ends: np.ndarray) -> Iterator[LineBlock]:
        """Blocks completed by these lines (relative to ``buffer``, which begins at file offset ``position``)."""
        while len(offsets):
            take = min(self._size - self._count, len(offsets))
            low = int(starts[0])
            high = int(offsets[take]) if take < len(offsets) else len(buffer)
            self._pieces.append((offsets[:take] + position, starts[:take] - low, ends[:take] - low, buffer[low:high]))
            self._count += take
            offsets, starts, ends = offsets[take:], starts[take:], ends[take:]
            if self._count == self._size:
                yield from self.flush(name, header)

    def flush(self, name: str, header: Optional[str]) -> Iterator[LineBlock]:
        """The block of the lines gathered so far, if any."""
        if not self._count:
            return
        all_offsets, all_starts, all_ends, data = [], [], [], []
        size = 0
        for offsets, starts, ends, piece in self._pieces:
            all_offsets.append(offsets)
            all_starts.append(starts + size)
            all_ends.append(ends + size)
            data.append(piece)
            size += len(piece)
        self._pieces, self._count = [], 0
        yield LineBlock(name, header, np.concatenate(all_offsets).tolist(), np.concatenate(all_starts).tolist(),
                        np.concatenate(all_ends).tolist(), b"".join(data))


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
