"""The fast path of the JSONL reader: a block of lines parsed by pyarrow's C++ JSON reader.

:class:`ArrowJsonLines` turns a :class:`LineBlock` into a ``pyarrow.Table`` of rows (columns
``id``, ``text`` and, as configured, ``target`` and ``label``) only when the line parser
(``readers.ParseJsonLines``) would read every line of it as a row, with the same values;
otherwise it returns None and the line parser reads the block, so every bad line still gets
its own reason. The block qualifies when:

- it is valid UTF-8, holds no BOM (Arrow skips one, Python's ``json`` refuses it) and no
  line that is empty or blank once stripped (Arrow skips those), and every line is
  ``{...}`` between JSON spaces (pyarrow 25 crashes on a block whose first line is
  ``null``, and reads ``{...} null`` as one row);
- no line opens more than :data:`MAX_NESTING` brackets (Python's ``json`` gives up deep
  nesting with a RecursionError, Arrow reads it), and no run of digits is longer than
  Python converts to an int (``sys.get_int_max_str_digits()``; Arrow reads a float), in
  any field, used or not;
- Arrow parses it (it refuses what Python refuses: bad syntax, duplicate keys, lone
  surrogates, control characters in strings, a line that is not an object) into one row
  per line: two objects on a line would be two rows;
- every configured column is on every line, never null, with a type that keeps the JSON
  value as Python reads it: text and target strings; label a string, an integer or a
  boolean (a column of integers and floats becomes floats); id a string or an integer (an
  integer id is ``str(value)``, as the line parser makes it).
"""

from __future__ import annotations

import sys
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from seqbeam.transforms.arrow_lines import valid_utf8, block_lines, python_strip, row_ids
from seqbeam.transforms.sources import LineBlock

# Brackets a line may open and still be read by Arrow (Python's json recurses once per level).
MAX_NESTING = 200
_BOM = "\ufeff".encode("utf-8")
_JSON_SPACE = " \t"
_ROLES = ("text", "target", "label", "id")
_TYPES = {
    "text": (pa.string(),),
    "target": (pa.string(),),
    "label": (pa.string(), pa.int64(), pa.bool_()),
    "id": (pa.string(), pa.int64()),
}
_OPENING = np.zeros(256, dtype=np.int64)
_OPENING[[ord("["), ord("{")]] = 1


def _longest_digit_run(codes: np.ndarray) -> int:
    """The most ASCII digits in a row in the bytes."""
    digits = (codes >= ord("0")) & (codes <= ord("9"))
    if not digits.any():
        return 0
    counted = np.cumsum(digits)
    # Minus the count at the last non-digit before each position: the length of the run there.
    return int((counted - np.maximum.accumulate(np.where(digits, 0, counted))).max())


class ArrowJsonLines:
    """Parses blocks of JSON lines with Arrow; None for a block the line parser must read.

    ``columns`` maps each configured role (text, target, label, id) to its key.
    """

    def __init__(self, columns: dict):
        self._columns = {role: columns[role] for role in _ROLES if columns.get(role) is not None}

    def table(self, block: LineBlock) -> Optional[pa.Table]:
        """The block's rows as a Table, or None."""
        if (not block.offsets or any(not isinstance(key, str) for key in self._columns.values())
                or self._unusable(block)):
            return None
        try:
            parsed = pa_json.read_json(
                pa.py_buffer(block.data),
                read_options=pa_json.ReadOptions(use_threads=False, block_size=len(block.data) + 1),
                parse_options=pa_json.ParseOptions(newlines_in_values=False, unexpected_field_behavior="infer"),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return None
        if parsed.num_rows != len(block.offsets):
            return None
        fields = {}
        for role, key in self._columns.items():
            if key not in parsed.column_names or parsed.schema.get_field_index(key) < 0:
                return None
            column = parsed.column(key)
            # The type first: Arrow fails to combine some others (a list of nulls).
            if column.type not in _TYPES[role]:
                return None
            values = column.combine_chunks()
            if values.null_count:
                return None
            fields[role] = values.cast(pa.string()) if role == "id" else values
        if "id" not in fields:
            fields["id"] = row_ids(block)
        return pa.table({role: fields[role] for role in _ROLES if role in fields})

    @staticmethod
    def _unusable(block: LineBlock) -> bool:
        """Whether a look at the bytes already says the line parser must read the block."""
        data = block.data
        if _BOM in data or np.any(np.asarray(block.starts) == np.asarray(block.ends)) or not valid_utf8(data):
            return True
        lines = block_lines(block)
        if lines is None or not pc.all(pc.greater(pc.utf8_length(python_strip(lines)), 0)).as_py():
            return True
        objects = pc.utf8_trim(lines, characters=_JSON_SPACE)
        if not pc.all(pc.and_(pc.starts_with(objects, "{"), pc.ends_with(objects, "}"))).as_py():
            return True  # a line that is no object (Arrow crashes on a first line of null)
        codes = np.frombuffer(data, dtype=np.uint8)
        opened = np.add.reduceat(_OPENING[codes], np.asarray(block.starts))
        return bool(np.any(opened > MAX_NESTING)) or _longest_digit_run(codes) > (sys.get_int_max_str_digits() or
                                                                                   np.inf)
