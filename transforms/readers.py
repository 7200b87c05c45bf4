"""Corpus readers: plain text, CSV/TSV, Anki pairs, aligned files, JSONL, Parquet.

Each reader turns files (local paths, globs or gs:// URLs) into :class:`Row` elements
with a stable id: the id column when one is configured, else ``<file>:<line>`` (the file
named relative to the glob's folder, so the same corpus gets the same ids wherever it
lives). A row that cannot be parsed goes to the ``rejected`` output with its raw bytes and
the reason; nothing is dropped.

Files are read whole by one worker each, streaming line by line: that is what gives a
row its line number. Large corpora should come as several files (shards).
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import re
from typing import Any, Iterator, Optional

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from seqbeam.pipelines.config import ConfigError, DataConfig
from seqbeam.transforms.records import REJECTED, STAGE_READ, Row, in_batches, rejection

_GLOB_CHARS = re.compile(r"[*?\[]")
# What surrogateescape turns a byte that is not UTF-8 into.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


class ReadCorpus(beam.PTransform):
    """Reads the configured corpus: a dict with PCollections ``batches`` and ``rejected``.

    ``batches`` holds lists of up to ``batch_size`` :class:`Row` (rows of one file).

    Arguments are checked here, on the launching machine: a path that matches no file,
    a CSV header without the configured columns or aligned files of different lengths
    fail at once instead of deep inside a worker.
    """

    def __init__(self, data: DataConfig, batch_size: int = 1024):
        super().__init__()
        if data.format == "generated":
            raise ValueError("generated corpora are read with GenerateRows")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._data = data
        self._batch_size = batch_size
        files = _match_or_fail(data.path, "data.path")
        if data.format in ("csv", "tsv"):
            if data.header:
                _check_header(files[0], data)
            else:
                _check_positional(data)
        if data.format == "aligned":
            targets = _match_or_fail(data.target_path, "data.target_path")
            _check_aligned(files, targets)
            # The matched files, not the patterns: a glob matching one file each is valid.
            self._aligned_paths = (files[0], targets[0])

    def expand(self, pbegin):
        data = self._data
        if data.format == "aligned":
            parsed = (
                pbegin
                | "ListPair" >> beam.Create([self._aligned_paths])
                | "ParseAligned"
                >> beam.ParDo(ParseAlignedFiles(self._batch_size)).with_outputs(REJECTED, main="batches")
            )
        else:
            parsed = (
                pbegin
                | "MatchFiles" >> fileio.MatchFiles(data.path)
                | "ReadMatches" >> fileio.ReadMatches()
                | "ParseFiles"
                >> beam.ParDo(_parser_for(data, self._batch_size)).with_outputs(REJECTED, main="batches")
            )
        return {"batches": parsed.batches, "rejected": parsed[REJECTED]}


def _parser_for(data: DataConfig, batch_size: int) -> beam.DoFn:
    base = _glob_base(data.path)
    if data.format == "text":
        return ParseTextFile(base, batch_size)
    if data.format == "jsonl":
        return ParseJsonLinesFile(base, data, batch_size)
    if data.format == "parquet":
        return ParseParquetFile(base, data, batch_size)
    return ParseDelimitedFile(base, data, batch_size)


def _match_or_fail(pattern: str, key: str) -> list[str]:
    """The files a pattern matches; fails when there is none or all are empty."""
    try:
        matches = FileSystems.match([pattern])[0].metadata_list
    except Exception as e:  # Beam raises BeamIOError for a missing folder, [] for a missing file
        raise FileNotFoundError(f"{key}: cannot list {pattern!r}: {e}") from e
    if not matches:
        raise FileNotFoundError(f"{key}: no file matches {pattern!r}")
    if all(m.size_in_bytes == 0 for m in matches):
        raise ValueError(f"{key}: the corpus is empty ({len(matches)} file(s) of 0 bytes match {pattern!r})")
    return sorted(m.path for m in matches)


def _glob_base(pattern: str) -> str:
    """The folder that ids are relative to: the part of the pattern before any glob."""
    match = _GLOB_CHARS.search(pattern)
    prefix = pattern[: match.start()] if match else pattern
    return posixpath.dirname(prefix)


def _relative_name(path: str, base: str) -> str:
    if base and path.startswith(base.rstrip("/") + "/"):
        return path[len(base.rstrip("/")) + 1 :]
    return posixpath.basename(path)


class _RawStream(io.RawIOBase):
    """Adapts Beam's file objects (gzip ones lack ``readinto``) to Python's io stack."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_text(stream) -> io.TextIOWrapper:
    """A text view of a binary stream: UTF-8 (BOM skipped), any newline convention.

    Bytes that are not UTF-8 become lone surrogates (``surrogateescape``), so the bad line
    can be rejected with its original bytes while the rest of the file is read.
    """
    return io.TextIOWrapper(
        io.BufferedReader(_RawStream(stream)), encoding="utf-8-sig", errors="surrogateescape", newline=None
    )


def _undecodable(line: str) -> Optional[int]:
    """Character offset of the first byte that was not UTF-8, or None."""
    match = _ESCAPED_BYTE.search(line)
    return match.start() if match else None


class _LineParser(beam.DoFn):
    """Streams a file's lines, rejecting undecodable and empty ones; subclasses parse the rest."""

    def __init__(self, base: str, batch_size: int, header: bool = False):
        self._base = base
        self._batch_size = batch_size
        self._header = header
        self._rows_in = beam.metrics.Metrics.counter("read", "rows_in")
        self._rejected = beam.metrics.Metrics.counter("read", "rows_rejected")

    def process(self, readable_file: fileio.ReadableFile) -> Iterator[Any]:
        yield from in_batches(self._parse_file(readable_file), self._batch_size)

    def _parse_file(self, readable_file: fileio.ReadableFile) -> Iterator[Any]:
        name = _relative_name(readable_file.metadata.path, self._base)
        rows_in = rejected = 0
        with readable_file.open() as stream:
            for line_no, line in enumerate(open_text(stream), start=1):
                line = line.rstrip("\n")
                if self._header and line_no == 1:
                    self.parse_header(name, line)
                    continue
                rows_in += 1
                out = self._parse_checked(name, line_no, line)
                if isinstance(out, beam.pvalue.TaggedOutput):
                    rejected += 1
                yield out
        self._rows_in.inc(rows_in)
        self._rejected.inc(rejected)

    def _parse_checked(self, name: str, line_no: int, line: str) -> Any:
        row_id = f"{name}:{line_no}"
        bad = _undecodable(line)
        if bad is not None:
            return _reject(row_id, line, "undecodable", f"bytes that are not UTF-8 at character {bad}")
        if not line.strip():
            return _reject(row_id, line, "empty_line")
        return self.parse_line(name, line_no, row_id, line)

    def parse_header(self, name: str, line: str) -> None:
        """Reads the header line of a file that has one."""

    def parse_line(self, name: str, line_no: int, row_id: str, line: str) -> Any:
        """The Row (or tagged rejection) of one decoded, non-empty line."""
        raise NotImplementedError


def _reject(row_id: str, raw: Any, code: str, detail: str = "") -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput(REJECTED, rejection(row_id, raw, STAGE_READ, code, detail))


class ParseTextFile(_LineParser):
    """Plain text: one item per line."""

    def parse_line(self, name, line_no, row_id, line):
        return Row(id=row_id, text=line)


class _ColumnPicker:
    """Pulls the configured text/target/label/id columns out of a parsed record."""

    def __init__(self, data: DataConfig):
        roles = {"text": data.text_column, "target": data.target_column,
                 "label": data.label_column, "id": data.id_column}
        self._columns = [(role, column) for role, column in roles.items() if column is not None]

    def row(self, default_id: str, record: Any, raw: Any) -> Any:
        """A Row, or a rejection naming the first missing or non-text column."""
        values = {}
        for role, column in self._columns:
            try:
                value = record[column]
            except (KeyError, IndexError):
                return _reject(default_id, raw, "missing_column", f"no column {column!r} ({_shape(record)})")
            if value is None:
                return _reject(default_id, raw, "missing_value", f"column {column!r} is null")
            if role in ("text", "target") and not isinstance(value, str):
                return _reject(
                    default_id, raw, "not_text", f"column {column!r} holds {type(value).__name__}, not text"
                )
            # The id too: it is hashed for the split and written to Parquet, both as UTF-8.
            if role in ("text", "target", "id") and isinstance(value, str) and not _encodable(value):
                return _reject(default_id, raw, "undecodable",
                               f"column {column!r} holds a lone surrogate (a JSON \\uD800-style escape), not UTF-8")
            values[role] = value
        row_id = str(values.pop("id")) if "id" in values else default_id
        return Row(id=row_id, **values)


def _encodable(text: str) -> bool:
    """Whether the text is valid Unicode: JSON can spell lone surrogates, which UTF-8 cannot hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shape(record: Any) -> str:
    if isinstance(record, dict):
        return f"keys: {', '.join(map(str, list(record)[:8]))}"
    return f"row has {len(record)} field{'s' if len(record) != 1 else ''}"


class ParseDelimitedFile(_LineParser):
    """CSV, TSV and Anki/Tatoeba pairs (``source<TAB>target<TAB>attribution``).

    Each physical line is one record: a quote left open is a rejected line, not a field
    that swallows the rest of the file. Fields are stripped of surrounding whitespace
    (stray tabs in EMOJISET-style files); extra trailing columns are ignored.
    """

    def __init__(self, base: str, data: DataConfig, batch_size: int):
        if data.format == "anki":
            data = DataConfig(format="anki", path=data.path, text_column=0, target_column=1,
                              header=False, delimiter="\t", quoting="none")
        super().__init__(base, batch_size, header=data.header)
        self._delimiter = _delimiter(data)
        self._quoting = csv.QUOTE_NONE if data.quoting == "none" else csv.QUOTE_MINIMAL
        self._columns = _ColumnPicker(data)
        self._header_of: dict[str, dict[str, int]] = {}

    def _fields(self, line: str) -> list[str]:
        if '"' in line and self._quoting != csv.QUOTE_NONE:
            if len(line) > csv.field_size_limit():
                # A field over the csv module's limit (128 KiB) is a long text for validation to
                # judge (too_long), not malformed CSV.
                csv.field_size_limit(len(line))
            reader = csv.reader([line], delimiter=self._delimiter, quoting=self._quoting,
                                strict=True, skipinitialspace=True)
            fields = next(reader)
        else:  # what the csv module returns for a line without quotes, 5x faster
            fields = line.split(self._delimiter)
        return [field.strip() for field in fields]

    def parse_header(self, name, line):
        try:
            fields = self._fields(line)
        except csv.Error:
            fields = []
        self._header_of[name] = {column: i for i, column in enumerate(fields)}

    def parse_line(self, name, line_no, row_id, line):
        try:
            fields = self._fields(line)
        except csv.Error as e:
            return _reject(row_id, line, "malformed_csv", str(e))
        if self._header:
            header = self._header_of.get(name, {})
            record = {column: fields[i] for column, i in header.items() if i < len(fields)}
        else:
            record = fields
        return self._columns.row(row_id, record, line)


class ParseJsonLinesFile(_LineParser):
    """JSON Lines: one object per line, columns are keys."""

    def __init__(self, base: str, data: DataConfig, batch_size: int):
        super().__init__(base, batch_size)
        self._columns = _ColumnPicker(data)

    def parse_line(self, name, line_no, row_id, line):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than the interpreter's limit
            return _reject(row_id, line, "malformed_json", str(e))
        if not isinstance(record, dict):
            return _reject(row_id, line, "malformed_json", f"expected an object, got {type(record).__name__}")
        return self._columns.row(row_id, record, line)


class ParseParquetFile(beam.DoFn):
    """Parquet, streamed one record batch at a time; ids are ``<file>:<row>`` (1-based)."""

    def __init__(self, base: str, data: DataConfig, batch_size: int):
        self._base = base
        self._columns = _ColumnPicker(data)
        self._wanted = [c for c in (data.text_column, data.target_column, data.label_column, data.id_column)
                        if c is not None]
        self._batch_size = batch_size
        self._rows_in = beam.metrics.Metrics.counter("read", "rows_in")

    def process(self, readable_file: fileio.ReadableFile):
        yield from in_batches(self._parse_file(readable_file), self._batch_size)

    def _parse_file(self, readable_file: fileio.ReadableFile):
        import pyarrow.parquet as pq

        name = _relative_name(readable_file.metadata.path, self._base)
        with readable_file.open() as stream:
            # Parquet's footer is at the end: the reader needs Beam's own (seekable) stream.
            parquet = pq.ParquetFile(stream)
            present = set(parquet.schema_arrow.names)
            columns = [c for c in self._wanted if c in present]
            row_no = 0
            for batch in parquet.iter_batches(batch_size=self._batch_size, columns=columns):
                for record in batch.to_pylist():
                    row_no += 1
                    self._rows_in.inc()
                    yield self._columns.row(f"{name}:{row_no}", record, json.dumps(record, default=str))


class ParseAlignedFiles(beam.DoFn):
    """Two files, line i of the target translating line i of the source."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size
        self._rows_in = beam.metrics.Metrics.counter("read", "rows_in")

    def process(self, paths: tuple[str, str]):
        yield from in_batches(self._parse_pair(paths), self._batch_size)

    def _parse_pair(self, paths: tuple[str, str]):
        source_path, target_path = paths
        name = posixpath.basename(source_path)
        with FileSystems.open(source_path) as source, FileSystems.open(target_path) as target:
            source_lines, target_lines = open_text(source), open_text(target)
            for line_no, (text, translation) in enumerate(zip(source_lines, target_lines), start=1):
                self._rows_in.inc()
                row_id = f"{name}:{line_no}"
                text, translation = text.rstrip("\n"), translation.rstrip("\n")
                raw = f"{text}\t{translation}"
                if _undecodable(raw) is not None:
                    yield _reject(row_id, raw, "undecodable", "bytes that are not UTF-8")
                elif not text.strip():
                    yield _reject(row_id, raw, "empty_line")
                else:
                    yield Row(id=row_id, text=text, target=translation)
            # Lengths were checked at launch; lines past the shorter file are still accounted.
            for leftover, side in ((source_lines, "source"), (target_lines, "target")):
                for line in leftover:
                    self._rows_in.inc()
                    line_no += 1
                    yield _reject(f"{name}:{line_no}", line.rstrip("\n"), "unaligned", f"no {side} counterpart")


def _check_header(path: str, data: DataConfig) -> None:
    with FileSystems.open(path) as stream:
        first = open_text(stream).readline().rstrip("\n")
    header = [f.strip() for f in next(csv.reader([first], delimiter=_delimiter(data)))] if first else []
    for key in ("text_column", "target_column", "label_column", "id_column"):
        column = getattr(data, key)
        if isinstance(column, str) and column not in header:
            raise ConfigError(f"data.{key}: column {column!r} is not in the header of {path} ({header})")


def _check_positional(data: DataConfig) -> None:
    """Without a header, columns are 0-based positions: a name would fail in every worker."""
    for key in ("text_column", "target_column", "label_column", "id_column"):
        column = getattr(data, key)
        if isinstance(column, str):
            raise ConfigError(f"data.{key}: {column!r} names a column, but data.header is false: give its position")


def _delimiter(data: DataConfig) -> str:
    """TSV means tab unless a delimiter other than the default comma was set."""
    return "\t" if data.format == "tsv" and data.delimiter == "," else data.delimiter


def _count_lines(path: str) -> int:
    with FileSystems.open(path) as stream:
        return sum(1 for _ in open_text(stream))


def _check_aligned(sources: list[str], targets: list[str]) -> None:
    if len(sources) != 1 or len(targets) != 1:
        raise ConfigError("data.path / data.target_path: aligned corpora are two single files, not globs")
    n_source, n_target = _count_lines(sources[0]), _count_lines(targets[0])
    if n_source != n_target:
        raise ValueError(
            f"aligned files differ in length: {sources[0]} has {n_source} lines, {targets[0]} has {n_target}"
        )
