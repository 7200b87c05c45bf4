"""Corpus readers: plain text, CSV/TSV, Anki pairs, aligned files, JSONL, Parquet.

Each reader turns files (local paths, globs or gs:// URLs) into :class:`Row` elements
with a stable id: the id column when one is configured, else ``<file>:<offset>``, the
byte offset where the row's line starts (Parquet: ``<file>:<row>``), the file named
relative to the glob's folder, so the same corpus gets the same ids wherever it lives
and whichever worker reads which part of it. A row that cannot be parsed goes to the
``rejected`` output with its raw bytes and the reason; nothing is dropped.

Files are read through splittable sources (:mod:`seqbeam.transforms.sources`): a runner
splits a big file across its workers by byte ranges (Parquet: row groups). Two inputs
cannot be split, and are read whole then spread over the workers with a Reshuffle:
compressed files (gzip, bzip2, ...) and aligned files (line i of one file pairs with line
i of the other).
"""

from __future__ import annotations

import csv
import json
from typing import Any, Iterator, Optional

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from seqbeam.configs.schema import ConfigError, DataConfig
from seqbeam.transforms.aligned import ParseAlignedFiles
from seqbeam.transforms.arrow_json import ArrowJsonLines
from seqbeam.transforms.arrow_lines import ArrowDelimited, text_lines_table
from seqbeam.transforms.records import REJECTED, STAGE_READ, Row, rejection
from seqbeam.transforms.sources import (
    LineBatch,
    LineBlock,
    LineSource,
    ParquetBatch,
    ParquetSource,
    decode_line,
    glob_base,
    is_compressed,
    iter_lines,
    undecodable_at,
)



class ReadCorpus(beam.PTransform):
    """Reads the configured corpus: a dict with PCollections ``batches`` and ``rejected``.

    ``batches`` holds lists of up to ``batch_size`` :class:`Row` (rows of one file).

    Arguments are checked here, on the launching machine, without reading the corpus: a
    path that matches no file, or a CSV header without the configured columns, fails at
    once naming the key (``config_key`` is the config section the data comes from, e.g.
    ``infer.input``) instead of deep inside a worker.
    """

    def __init__(self, data: DataConfig, batch_size: int = 1024, config_key: str = "data"):
        super().__init__()
        if data.format == "generated":
            raise ValueError("generated corpora are read with GenerateRows")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._data = data
        self._batch_size = batch_size
        files = _match_or_fail(data.path, f"{config_key}.path")
        self._compressed = any(is_compressed(path) for path in files)
        if data.format in ("csv", "tsv"):
            if data.header:
                _check_header(files[0], data, config_key)
            else:
                _check_positional(data, config_key)
        if data.format == "aligned":
            targets = _match_or_fail(data.target_path, f"{config_key}.target_path")
            if len(files) != 1 or len(targets) != 1:
                raise ConfigError(f"{config_key}.path / {config_key}.target_path: aligned corpora are two "
                                  "single files, not globs")
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
            # Two files read in step cannot be split: spread their rows over the workers.
            return {"batches": parsed.batches | "SpreadRows" >> beam.Reshuffle(), "rejected": parsed[REJECTED]}
        base = glob_base(data.path)
        if data.format == "parquet":
            source = ParquetSource(data.path, base, _wanted_columns(data), self._batch_size)
            parser: beam.DoFn = ParseParquetBatches(data)
        else:
            source = LineSource(data.path, base, self._batch_size, header=_has_header(data))
            parser = _line_parser_for(data)
        chunks = pbegin | "ReadFiles" >> beam.io.Read(source)
        if self._compressed:  # each compressed file is read whole, by one worker
            chunks = chunks | "SpreadLines" >> beam.Reshuffle()
        parsed = chunks | "Parse" >> beam.ParDo(parser).with_outputs(REJECTED, main="batches")
        return {"batches": parsed.batches, "rejected": parsed[REJECTED]}


def _has_header(data: DataConfig) -> bool:
    return data.format in ("csv", "tsv") and data.header


def _line_parser_for(data: DataConfig) -> "LineParser":
    """The DoFn that turns the :class:`LineBatch` elements of a line format into rows."""
    if data.format == "text":
        return ParseTextLines()
    if data.format == "jsonl":
        return ParseJsonLines(data)
    return ParseDelimitedLines(data)


def _wanted_columns(data: DataConfig) -> list:
    return [c for c in (data.text_column, data.target_column, data.label_column, data.id_column) if c is not None]


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


class LineParser(beam.DoFn):
    """:class:`LineBlock` (or :class:`LineBatch`) -> a list of Rows (tagged rejections apart), one line per row.

    Undecodable and empty lines are rejected here; subclasses parse the rest.
    """

    # False reads every block line by line (the reference the tests compare the fast paths with).
    use_arrow = True

    def __init__(self):
        self._rows_in = beam.metrics.Metrics.counter("read", "rows_in")
        self._rejected = beam.metrics.Metrics.counter("read", "rows_rejected")

    def process(self, batch: LineBlock | LineBatch) -> Iterator[Any]:
        if isinstance(batch, LineBlock):
            table = self.arrow_table(batch) if self.use_arrow else None
            if table is not None:
                self._rows_in.inc(table.num_rows)
                yield table
                return
            batch = batch.decoded()
        yield from self.parse_lines(batch)

    def arrow_table(self, block: LineBlock) -> Optional[pa.Table]:
        """The block's rows as one table read by Arrow, or None when the line parser must read it
        (a subclass's fast path; none here)."""
        return None

    def parse_lines(self, batch: LineBatch) -> Iterator[Any]:
        """The line by line parse of a batch: the reference every faster path must match."""
        self.start_file(batch)
        rows = []
        for offset, line in zip(batch.offsets, batch.lines):
            out = self._parse_checked(f"{batch.file}:{offset}", line)
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield out
            else:
                rows.append(out)
        self._rows_in.inc(len(batch.lines))
        self._rejected.inc(len(batch.lines) - len(rows))
        if rows:
            yield rows

    def _parse_checked(self, row_id: str, line: str) -> Any:
        bad = undecodable_at(line)
        if bad is not None:
            return _reject(row_id, line, "undecodable", f"bytes that are not UTF-8 at character {bad}")
        if not line.strip():
            return _reject(row_id, line, "empty_line")
        return self.parse_line(row_id, line)

    def start_file(self, batch: LineBatch) -> None:
        """Called before the lines of each batch, e.g. to read the header of its file."""

    def parse_line(self, row_id: str, line: str) -> Any:
        """The Row (or tagged rejection) of one decoded, non-empty line."""
        raise NotImplementedError


def _reject(row_id: str, raw: Any, code: str, detail: str = "") -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput(REJECTED, rejection(row_id, raw, STAGE_READ, code, detail))


class ParseTextLines(LineParser):
    """Plain text: one item per line.

    A block with no line to reject (valid UTF-8, no empty or blank line) comes out as one
    ``pyarrow.Table`` of rows, read by Arrow (:func:`~seqbeam.transforms.arrow_lines.text_lines_table`);
    any other block is read line by line here.
    """

    def arrow_table(self, block):
        return text_lines_table(block)

    def parse_line(self, row_id, line):
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


class ParseDelimitedLines(LineParser):
    """CSV, TSV and Anki/Tatoeba pairs (``source<TAB>target<TAB>attribution``).

    Each physical line is one record: a quote left open is a rejected line, not a field
    that swallows the rest of the file. Fields are stripped of surrounding whitespace
    (stray tabs in EMOJISET-style files). Columns are named by the header of the row's own
    file when there is one, and a row with more non-empty fields than its header names
    is rejected (``extra_columns``: an unquoted delimiter inside a text would otherwise
    cut it). Without a header, columns are positions and extra trailing fields are ignored
    (EMOJISET's ``sentence,label,,``).

    A block that pyarrow's CSV reader parses the way this parser would (valid UTF-8, no
    empty line, well-formed quotes, as many fields on every line) is read by it instead and
    comes out as one ``pyarrow.Table`` of rows (:mod:`seqbeam.transforms.arrow_lines`);
    any other block is read line by line here.
    """

    def __init__(self, data: DataConfig):
        super().__init__()
        if data.format == "anki":
            data = DataConfig(format="anki", path=data.path, text_column=0, target_column=1,
                              header=False, delimiter="\t", quoting="none")
        self._header = data.header
        self._delimiter = _delimiter(data)
        self._quoting = csv.QUOTE_NONE if data.quoting == "none" else csv.QUOTE_MINIMAL
        self._columns = _ColumnPicker(data)
        self._header_line: Optional[str] = None
        self._header_names: list[str] = []
        self._arrow = ArrowDelimited(self._delimiter, self._quoting != csv.QUOTE_NONE, data.header, {
            "text": data.text_column, "target": data.target_column, "label": data.label_column, "id": data.id_column})

    def arrow_table(self, block):
        self.start_file(block)
        return self._arrow.table(block, self._header_names)

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

    def start_file(self, batch):
        if self._header and batch.header != self._header_line:
            try:
                self._header_names = self._fields(batch.header or "")
            except csv.Error:
                self._header_names = []
            self._header_line = batch.header

    def parse_line(self, row_id, line):
        try:
            fields = self._fields(line)
        except csv.Error as e:
            return _reject(row_id, line, "malformed_csv", str(e))
        if not self._header:
            return self._columns.row(row_id, fields, line)
        names = self._header_names
        if len(fields) > len(names) and any(fields[len(names):]):
            return _reject(row_id, line, "extra_columns",
                           f"{len(fields)} fields, the header names {len(names)} (an unquoted "
                           f"{self._delimiter!r} inside a field?)")
        record = dict(zip(names, fields))
        return self._columns.row(row_id, record, line)


class ParseJsonLines(LineParser):
    """JSON Lines: one object per line, columns are keys.

    A block that pyarrow's JSON reader parses the way this parser would (every line an
    object with every configured key, values of the same types) is read by it instead and
    comes out as one ``pyarrow.Table`` of rows (:mod:`seqbeam.transforms.arrow_json`); any
    other block is read line by line here.
    """

    def __init__(self, data: DataConfig):
        super().__init__()
        self._columns = _ColumnPicker(data)
        self._arrow = ArrowJsonLines({"text": data.text_column, "target": data.target_column,
                                      "label": data.label_column, "id": data.id_column})

    def arrow_table(self, block):
        return self._arrow.table(block)

    def parse_line(self, row_id, line):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than the interpreter's limit
            return _reject(row_id, line, "malformed_json", str(e))
        if not isinstance(record, dict):
            return _reject(row_id, line, "malformed_json", f"expected an object, got {type(record).__name__}")
        return self._columns.row(row_id, record, line)


class ParseParquetBatches(beam.DoFn):
    """:class:`ParquetBatch` -> a list of Rows (tagged rejections apart); ids are ``<file>:<row>`` (1-based)."""

    def __init__(self, data: DataConfig):
        self._columns = _ColumnPicker(data)
        self._rows_in = beam.metrics.Metrics.counter("read", "rows_in")

    def process(self, batch: ParquetBatch):
        rows = []
        for row_no, record in enumerate(batch.records, start=batch.first_row):
            out = self._columns.row(f"{batch.file}:{row_no}", record, json.dumps(record, default=str))
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield out
            else:
                rows.append(out)
        self._rows_in.inc(len(batch.records))
        if rows:
            yield rows


def _check_header(path: str, data: DataConfig, config_key: str) -> None:
    with FileSystems.open(path) as stream:
        first = decode_line(next(iter_lines(stream, 0, block=4096), (0, b""))[1])
    header = [f.strip() for f in next(csv.reader([first], delimiter=_delimiter(data)))] if first else []
    for key in ("text_column", "target_column", "label_column", "id_column"):
        column = getattr(data, key)
        if isinstance(column, str) and column not in header:
            raise ConfigError(f"{config_key}.{key}: column {column!r} is not in the header of {path} ({header})")


def _check_positional(data: DataConfig, config_key: str) -> None:
    """Without a header, columns are 0-based positions: a name would fail in every worker."""
    for key in ("text_column", "target_column", "label_column", "id_column"):
        column = getattr(data, key)
        if isinstance(column, str):
            raise ConfigError(f"{config_key}.{key}: {column!r} names a column, but {config_key}.header is false: "
                              "give its position")


def _delimiter(data: DataConfig) -> str:
    """TSV means tab unless a delimiter other than the default comma was set."""
    return "\t" if data.format == "tsv" and data.delimiter == "," else data.delimiter
