"""The fast path of the line readers: a block of lines parsed by pyarrow's C++ readers.

:func:`text_lines_table` reads a block of plain text lines (one row per line) as a table
when it is valid UTF-8 and no line is empty or blank once stripped (what the line parser
rejects), so the line parser reads only blocks with a line to reject.

:class:`ArrowDelimited` turns a :class:`LineBlock` into a ``pyarrow.Table`` of rows (columns
``id``, ``text`` and, as configured, ``target`` and ``label``) only when the block is one
that the Python line parser (``readers.ParseDelimitedLines``) would read without rejecting
a line and with the same fields; otherwise it returns None and the line parser reads the
block, so every bad line still gets its own reason. The block qualifies when:

- it is valid UTF-8, holds no empty line and does not start with a BOM (the file's own BOM
  is not in the block; Arrow would drop one that begins a later block's first line);
- with quoting, every line is fields that are either unquoted without a quote, or quoted
  from their first character to the delimiter or line end, with ``""`` inside (what both
  parsers read alike: no space before an opening quote, nothing after a closing one, no
  quote left open, no NUL);
- Arrow finds the same number of fields on every line, the header's count when there is
  one (a row with more or fewer fields is the line parser's to judge);
- no line is blank once stripped (with one column, or a whitespace delimiter like tab, a
  line of whitespace parses as fields; the line parser rejects it as ``empty_line``).

Fields are then stripped of what ``str.strip()`` strips (Unicode whitespace as Python
defines it), the line parser's rule.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from seqbeam.transforms.sources import LineBlock

# What str.strip() strips: the characters whose str.isspace() is true (a test checks the list).
PYTHON_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                     "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")

_BOM = b"\xef\xbb\xbf"
_ROLES = ("text", "target", "label", "id")
# Without a header, columns past the configured ones are typed as text up to this many more;
# a file with still more columns is read by the line parser.
_EXTRA_COLUMNS = 16


def python_strip(values: pa.Array) -> pa.Array:
    """``str.strip()`` of every string of an Arrow array."""
    return pc.utf8_trim(values, characters=PYTHON_WHITESPACE)


def row_ids(block: LineBlock) -> pa.Array:
    """``<file>:<offset>`` of every line of a block: the ids of rows without an id column."""
    offsets = pc.cast(pa.array(block.offsets, pa.int64()), pa.string())
    return pc.binary_join_element_wise(block.file + ":", offsets, "")


def valid_utf8(data: bytes) -> bool:
    """Whether the bytes decode as UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def block_lines(block: LineBlock) -> Optional[pa.Array]:
    """The lines of a block of valid UTF-8 as a string array (breaks left out), or None if its lines
    do not follow each other in its bytes as a source lays them out."""
    starts, ends = np.asarray(block.starts, dtype=np.int64), np.asarray(block.ends, dtype=np.int64)
    # Line i with its break runs up to line i + 1.
    bounds = np.append(starts, ends[-1]).astype(np.int32)
    with_breaks = pa.StringArray.from_buffers(len(starts), pa.py_buffer(bounds), pa.py_buffer(block.data))
    lines = pc.utf8_rtrim(with_breaks, characters="\r\n")  # a line holds no break: only its own is cut
    if not np.array_equal(pc.binary_length(lines).to_numpy(zero_copy_only=False), ends - starts):
        return None
    return lines


def text_lines_table(block: LineBlock) -> Optional[pa.Table]:
    """The block's lines as a table of ``id`` and ``text`` (the line as it is), or None when the
    line parser must read it: a line is empty or blank, or the block is not UTF-8."""
    if not block.offsets or np.any(np.asarray(block.starts) == np.asarray(block.ends)) or not valid_utf8(block.data):
        return None
    lines = block_lines(block)
    if lines is None or not pc.all(pc.greater(pc.utf8_length(python_strip(lines)), 0)).as_py():
        return None
    return pa.table({"id": row_ids(block), "text": lines})


def _well_formed_line(delimiter: str) -> str:
    """:func:`_well_formed` of one line, for RE2 on a line of text (an ASCII ``delimiter``)."""
    d = f"\\x{ord(delimiter):02x}"
    quoted = '"[^"\\r\\n\\x00]*(?:""[^"\\r\\n\\x00]*)*"'
    plain = '[^"\\r\\n\\x00' + d + ']*'
    field = "(?:" + quoted + "|" + plain + ")"
    return "^" + field + "(?:" + d + field + ")*$"


def _well_formed(delimiter: str) -> "re.Pattern[bytes]":
    """A whole block of lines whose quotes both parsers read alike (see the module docstring)."""
    d = re.escape(delimiter.encode("utf-8"))
    quoted = rb'"[^"\r\n\x00]*(?:""[^"\r\n\x00]*)*"'
    plain = rb'[^"\r\n\x00' + d + rb']*'
    field = rb"(?:" + quoted + rb"|" + plain + rb")"
    line = field + rb"(?:" + d + field + rb")*"
    return re.compile(rb"(?:" + line + rb"(?:\r\n|\n|\r))*(?:" + line + rb")?")


class ArrowDelimited:
    """Parses blocks of delimited lines with Arrow; None for a block the line parser must read.

    ``columns`` maps each configured role (text, target, label, id) to its column: a header
    name when ``header``, else a 0-based position. ``quoting`` is False for ``quoting: none``.
    """

    def __init__(self, delimiter: str, quoting: bool, header: bool, columns: dict):
        self._delimiter = delimiter
        self._quoting = quoting
        self._header = header
        self._columns = {role: columns[role] for role in _ROLES if columns.get(role) is not None}
        self._pattern = _well_formed(delimiter) if quoting else None
        # An ASCII delimiter: the lines are checked by RE2, in C++ (the same language, line by line).
        self._line_pattern = _well_formed_line(delimiter) if quoting and delimiter.isascii() else None

    def table(self, block: LineBlock, header_names: Sequence[str]) -> Optional[pa.Table]:
        """The block's rows as a Table (``header_names``: the file's header fields, stripped), or None."""
        if not block.offsets or self._unusable(block):
            return None
        names = list(header_names) if self._header else None
        if names is not None and (len(set(names)) != len(names) or
                                  any(not isinstance(c, str) or c not in names for c in self._columns.values())):
            return None
        if names is None and any(not isinstance(c, int) or isinstance(c, bool) or c < 0
                                 for c in self._columns.values()):
            return None
        try:
            parsed = pa_csv.read_csv(
                pa.py_buffer(block.data),
                read_options=pa_csv.ReadOptions(use_threads=False, column_names=names,
                                                autogenerate_column_names=names is None,
                                                block_size=max(len(block.data) + 1, 1 << 16)),
                parse_options=pa_csv.ParseOptions(delimiter=self._delimiter,
                                                  quote_char='"' if self._quoting else False,
                                                  double_quote=True, escape_char=False,
                                                  newlines_in_values=False, ignore_empty_lines=False),
                convert_options=pa_csv.ConvertOptions(column_types=self._string_types(names),
                                                      strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                      check_utf8=True),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        return self._rows(block, parsed)

    def _string_types(self, names: Optional[list[str]]) -> dict:
        """Every column read as text, as the line parser reads it ("007" stays "007")."""
        if names is not None:
            return {name: pa.string() for name in names}
        return {f"f{i}": pa.string() for i in range(max(self._columns.values(), default=0) + _EXTRA_COLUMNS)}

    @staticmethod
    def _any_blank(parsed: pa.Table) -> bool:
        """Whether some row has nothing but whitespace in every field."""
        blank = None
        for column in parsed.columns:
            empty = pc.equal(pc.utf8_length(python_strip(column.combine_chunks())), 0)
            blank = empty if blank is None else pc.and_(blank, empty)
        return bool(pc.any(blank).as_py())

    def _unusable(self, block: LineBlock) -> bool:
        """Whether a cheap look at the bytes already says the line parser must read the block."""
        if np.any(np.asarray(block.starts) == np.asarray(block.ends)):
            return True  # an empty line
        if block.data.startswith(_BOM):
            return True  # Arrow would drop it: here it is part of the first line's text (the file's own is gone)
        if not valid_utf8(block.data):
            return True
        if self._line_pattern is not None:
            lines = block_lines(block)
            return lines is None or not pc.all(pc.match_substring_regex(lines, self._line_pattern)).as_py()
        return self._pattern is not None and self._pattern.fullmatch(block.data) is None

    def _rows(self, block: LineBlock, parsed: pa.Table) -> Optional[pa.Table]:
        if parsed.num_rows != len(block.offsets) or any(not pa.types.is_string(t) for t in parsed.schema.types):
            return None
        fields = {}
        for role, column in self._columns.items():
            if isinstance(column, int) and column >= parsed.num_columns:
                return None
            values = parsed.column(column)
            fields[role] = python_strip(values.combine_chunks())
        if (parsed.num_columns == 1 or self._delimiter.isspace()) and self._any_blank(parsed):
            return None  # maybe a line of whitespace only, which the line parser rejects as empty_line
        if "id" not in fields:
            fields["id"] = row_ids(block)
        return pa.table({role: fields[role] for role in _ROLES if role in fields})
