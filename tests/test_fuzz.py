"""Fuzzing the preprocessing and inference jobs with hypothesis.

Corpora mix every class of bad input (bytes that are not UTF-8, NUL and other control
characters, 1 MB lines, CRLF and lone-CR line breaks, unbalanced quotes, missing and extra
columns, bad labels, empty texts and targets, lone surrogates in JSON, BOMs, deep JSON
nesting) with valid rows, in the csv (with header), tsv and Anki pair, text and jsonl
formats. The properties:

- neither job raises;
- every input record ends in exactly one place, found by its id: a TFRecord or a rejected
  record (preprocessing), a prediction row or a rejected row (inference); the jobs' own
  counts agree (``metadata.json`` rows, ``infer_summary.json`` rows);
- every rejection carries a code of the documented set (no catch-all), and where the test
  knows what it injected into a line, the code is the one that class of input must get.

What a record is. The readers decode a file as UTF-8 (one BOM at the very start skipped,
bytes that are not UTF-8 kept as escapes) and cut it into lines at "\\n", "\\r\\n" and a lone
"\\r", nothing else: \\v, \\f, \\x1c-\\x1e, \\x85, U+2028 and U+2029 stay inside their line.
Every line is one record, with id ``<file>:<byte offset where the line starts>`` (a header
is the first line and no record), or the value of its id column once the line parses. A line break ends a
line: a final one does not start an empty record, a last line without one is still a
record, and an empty line between two breaks is one (rejected: ``empty_line``). So a CR
inside a line makes two records, and "\\r\\n" is one break, even right after an empty line.
:func:`physical_lines` is that rule on bytes; every generated corpus is checked against it.

The pipeline tests run few examples (a run of each job costs seconds), each corpus holding
every class of its format at least once; the DoFn tests drive the readers, the validation
and the inference row checks directly, with many more examples. Hypothesis is
derandomized and keeps no database: every run tests the same examples.

``SEQBEAM_FUZZ_REPORT=path.json`` writes the rows pushed through per class and what became
of them (the README's reliability table).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Optional

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.pvalue import TaggedOutput
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from seqbeam.pipelines import infer, layout, preprocess, serving
from seqbeam.configs.schema import DataConfig, config_from_dict
from seqbeam.transforms import readers
from seqbeam.transforms.sinks import REJECTED_SCHEMA
from seqbeam.transforms.validate import KeyExamples
from seqbeam.transforms.records import REJECTED, RowBatch, rejection, rows_of
from seqbeam.transforms.validate import ValidateBatches, parse_label

from conftest import EMOJI_CLASSES, EMOJI_FILLER, EMOJI_KEYWORDS, read_examples, read_rejected

# ------------------------------------------------------------------------------ settings

# No shrinking where an example costs two pipeline runs: the DoFn tests shrink the same classes.
PIPELINE = settings(max_examples=2, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
DOFN = settings(max_examples=40, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))
UNIT = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------------------ the codes

KEPT = "kept"
READ_CODES = {"undecodable", "empty_line", "malformed_csv", "malformed_json", "missing_column", "missing_value",
              "not_text", "extra_columns"}
PREPROCESS_CODES = {
    "read": READ_CODES,
    "validate": {"empty_text", "too_many_chars", "empty_target", "missing_label", "bad_label"},
    "encode": {"no_tokens", "too_many_tokens"},
}
# inference_error is left out on purpose: no input may make the model call fail.
INFER_CODES = {"read": READ_CODES, "validate": {"empty_text", "too_many_chars"}, "infer": {"too_many_tokens"}}

# ------------------------------------------------------------------------------ input pieces

WORDS = sorted({w for ws in EMOJI_KEYWORDS for w in ws} | set(EMOJI_FILLER)) + ["café", "niño", "straße", "❤️",
                                                                                "don't", "naïve", "東京"]
NUM_CLASSES = len(EMOJI_CLASSES)
LONG_CHARS = 1 << 20  # 1 MB lines: over preprocess.max_chars (10,000) and infer.max_chars (2,000)
MEDIUM_CHARS = 3_000  # over infer.max_chars only
BOM = "\ufeff"
# Sequences that are not UTF-8 (a few can join a neighbour into a character: break_utf8 checks).
INVALID_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xe2\x82", b"\xc0\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                b"\xf4\x90\x80\x80"]
# Control characters that str.strip() keeps and the tokenizer turns into spaces: a text of
# them only has no token.
HARD_CONTROLS = [chr(c) for c in (*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F, 0x80, 0x9F)]
# Whitespace to str.strip() that is no line break to the readers.
SOFT_CONTROLS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u2029", "\u3000", "\xa0"]

words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
labels = st.integers(0, NUM_CLASSES - 1)
hard_controls = st.text(st.sampled_from(HARD_CONTROLS), min_size=1, max_size=6)
soft_controls = st.text(st.sampled_from(SOFT_CONTROLS), min_size=1, max_size=6)
# Up to 210 sentences in a row (each one a model input at inference), under infer.max_chars.
sentences = st.integers(5, 70).map(lambda n: " ".join(["Great fun. We eat! So sad?"] * n))
blank = st.text(st.sampled_from([" ", "\t", *SOFT_CONTROLS]), max_size=4)
_INTEGER = re.compile(r"-?[0-9]+")
# Label fields that are not an integer once stripped (no delimiter, quote or line break in them).
bad_label_texts = st.one_of(
    st.sampled_from(["x", "1.5", "²", "٣", "+1", "one", "0x1", "1e0", "3 4", "NaN", "9" * 5000, "-", "١٢"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=',"\t\r\n'), min_size=1, max_size=8),
).filter(lambda s: not _INTEGER.fullmatch(s.strip()))
out_of_range = st.one_of(st.integers(NUM_CLASSES, 10**6), st.integers(-10**6, -1),
                         st.sampled_from([10**30, -(10**30)]))


@dataclasses.dataclass(frozen=True)
class Line:
    """One physical line of a generated corpus and what each job should make of it."""

    data: bytes  # without its line break
    cls: str  # the class of input it was made as
    pre: Optional[str]  # preprocessing: KEPT, a rejection code, or None (any known outcome)
    infer: Optional[str]  # inference, likewise
    row_id: Optional[str] = None  # the id column's value (jsonl), used once the line parses
    line_break: str = ""  # the break that must end it ("\r": the head of a record a CR splits); "" = any


def text_line(text: str, cls: str, pre: Optional[str], infer_: Optional[str], row_id: Optional[str] = None,
              line_break: str = "") -> Line:
    data = text.encode("utf-8")
    assert b"\r" not in data and b"\n" not in data, (cls, text[:80])
    return Line(data, cls, pre, infer_, row_id, line_break)


def long_text(draw, chars: int) -> str:
    word = draw(st.sampled_from(WORDS))
    return ((word + " ") * (chars // (len(word) + 1) + 1))[:chars].strip()


def break_utf8(draw, data: bytes) -> bytes:
    bad = draw(st.sampled_from(INVALID_UTF8))
    at = draw(st.integers(0, len(data)))
    broken = data[:at] + bad + data[at:]
    try:  # a lead byte put before a stray continuation byte can make a valid character
        broken.decode("utf-8")
    except UnicodeDecodeError:
        return broken
    return broken + b"\xff"


def random_bytes(draw) -> bytes:
    raw = draw(st.binary(max_size=40)).replace(b"\r", b"").replace(b"\n", b"")
    return break_utf8(draw, raw)


# ------------------------------------------------------------------------------ formats


@dataclasses.dataclass(frozen=True)
class Format:
    """A corpus format, the task its preprocessing runs and how to make lines of each class."""

    name: str
    file_name: str
    header: Optional[str]
    data: dict  # DataConfig keys, without the path
    task: dict
    preprocess: dict
    # class -> (draw, record index) -> lines (one, or two for a CR inside the line)
    classes: dict[str, Callable]

    def __repr__(self) -> str:
        return f"FORMATS[{self.name!r}]"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis prints dataclasses field by field otherwise
        printer.text(repr(self))

    def data_config(self, path: str) -> DataConfig:
        return config_from_dict({"task": self.task, "data": {**self.data, "path": path}}).data

    def config(self, path: str, output_dir: str):
        return config_from_dict({
            "task": self.task,
            "data": {**self.data, "path": path},
            "preprocess": {"num_shards": 1, "batch_size": 16, **self.preprocess},
            "output_dir": output_dir,
        }, source="test_fuzz")


def delimited_classes(delimiter: str, kind: str, quoting: bool, header: bool = False) -> dict[str, Callable]:
    """Line makers of a CSV/TSV/Anki corpus: ``text<d>label`` (classifier) or ``source<d>target``.

    Fields past the header's names are rejected (a delimiter inside a text would cut it),
    unless they are empty; without a header, extra trailing fields are ignored.
    """
    d = delimiter
    extra = "extra_columns" if header else KEPT
    second = labels.map(str) if kind == "classifier" else words

    def row(text: str, other: str) -> str:
        return f"{text}{d}{other}"

    def valid_text(draw) -> str:
        return row(draw(words), draw(second))

    classes = {
        "valid": lambda draw, i: [text_line(valid_text(draw), "valid", KEPT, KEPT)],
        "extra_columns": lambda draw, i: [text_line(row(draw(words), draw(second)) + f"{d}CC-BY 2.0{d}{draw(words)}",
                                                    "extra_columns", extra, extra)],
        "empty_extra_columns": lambda draw, i: [text_line(row(draw(words), draw(second)) + d * draw(st.integers(1, 3)),
                                                          "empty_extra_columns", KEPT, KEPT)],
        "invalid_utf8": lambda draw, i: [Line(break_utf8(draw, valid_text(draw).encode()), "invalid_utf8",
                                              "undecodable", "undecodable")],
        "random_bytes": lambda draw, i: [Line(random_bytes(draw), "random_bytes", "undecodable", "undecodable")],
        "nul": lambda draw, i: [text_line(row(f"{draw(words)}\x00{draw(words)}", draw(second)), "nul", KEPT, KEPT)],
        "controls_in_text": lambda draw, i: [text_line(
            row(draw(words) + draw(st.one_of(hard_controls, soft_controls)) + draw(words), draw(second)),
            "controls_in_text", KEPT, KEPT)],
        # No token after normalization: rejected by the preprocessing encoder; the model still reads it.
        "controls_only_text": lambda draw, i: [text_line(row(draw(hard_controls), draw(second)),
                                                         "controls_only_text", "no_tokens", KEPT)],
        "whitespace_only_text": lambda draw, i: [text_line(row(draw(soft_controls), draw(second)),
                                                           "whitespace_only_text", "empty_text", "empty_text")],
        "long_line": lambda draw, i: [text_line(row(long_text(draw, LONG_CHARS), draw(second)), "long_line",
                                                "too_many_chars", "too_many_chars")],
        "medium_line": lambda draw, i: [text_line(row(long_text(draw, MEDIUM_CHARS), draw(second)), "medium_line",
                                                  KEPT, "too_many_chars")],
        "many_sentences": lambda draw, i: [text_line(row(draw(sentences), draw(second)), "many_sentences", KEPT, KEPT)],
        # A lone CR splits the line: its head lacks the second column, its tail is a valid row.
        "cr_inside": lambda draw, i: [text_line(draw(words), "cr_inside", "missing_column", KEPT, line_break="\r"),
                                      text_line(valid_text(draw), "cr_inside", KEPT, KEPT)],
        "missing_column": lambda draw, i: [text_line(draw(words), "missing_column", "missing_column", KEPT)],
        "empty_text": lambda draw, i: [text_line(row(draw(st.sampled_from(["", " ", "   "])), draw(second)),
                                                 "empty_text", "empty_text", "empty_text")],
        "empty_line": lambda draw, i: [text_line(draw(blank), "empty_line", "empty_line", "empty_line")],
        # A BOM that is not the file's first character is text, like any other.
        "bom_in_line": lambda draw, i: [text_line(BOM + valid_text(draw), "bom_in_line", KEPT, KEPT)],
    }
    if quoting:
        classes["quoted"] = lambda draw, i: [text_line(
            row(f'"{draw(words)}, ""{draw(words)}""{d} {draw(words)}"', draw(second)), "quoted", KEPT, KEPT)]
        classes["unbalanced_quote"] = lambda draw, i: [text_line(
            draw(st.sampled_from([f'"{draw(words)}{d}{draw(second)}', f'{draw(words)}{d}"{draw(second)}'])),
            "unbalanced_quote", "malformed_csv", "malformed_csv")]
        # Over the csv module's 128 KiB field limit: still a text that is too long, not malformed CSV.
        classes["long_quoted"] = lambda draw, i: [text_line(row(f'"{long_text(draw, LONG_CHARS)}, x"', draw(second)),
                                                            "long_quoted", "too_many_chars", "too_many_chars")]
    else:  # Anki pairs: quotes are text
        classes["quoted"] = lambda draw, i: [text_line(
            row(f'"{draw(words)}," she said.', f'"{draw(words)}", dijo.'), "quoted", KEPT, KEPT)]
        classes["unbalanced_quote"] = lambda draw, i: [text_line(f'"{draw(words)}{d}{draw(words)}',
                                                                 "unbalanced_quote", KEPT, KEPT)]
    if kind == "classifier":
        classes["bad_label"] = lambda draw, i: [text_line(row(draw(words), draw(bad_label_texts)), "bad_label",
                                                          "bad_label", KEPT)]
        classes["label_out_of_range"] = lambda draw, i: [text_line(row(draw(words), str(draw(out_of_range))),
                                                                   "label_out_of_range", "bad_label", KEPT)]
        classes["empty_label"] = lambda draw, i: [text_line(row(draw(words), draw(st.sampled_from(["", " "]))),
                                                            "empty_label", "bad_label", KEPT)]
    else:
        classes["empty_target"] = lambda draw, i: [text_line(row(draw(words), draw(st.sampled_from(["", " ", "  "]))),
                                                             "empty_target", "empty_target", KEPT)]
        classes["controls_only_target"] = lambda draw, i: [text_line(row(draw(words), draw(hard_controls)),
                                                                     "controls_only_target", "no_tokens", KEPT)]
        classes["long_target"] = lambda draw, i: [text_line(row(draw(words), long_text(draw, LONG_CHARS)),
                                                            "long_target", "too_many_chars", KEPT)]
    return classes


def text_classes() -> dict[str, Callable]:
    """Line makers of a plain-text corpus (one name or sentence per line)."""
    return {
        "valid": lambda draw, i: [text_line(draw(words), "valid", KEPT, KEPT)],
        "quoted": lambda draw, i: [text_line(f'"{draw(words)}", {draw(words)}', "quoted", KEPT, KEPT)],
        "unbalanced_quote": lambda draw, i: [text_line(f'"{draw(words)}', "unbalanced_quote", KEPT, KEPT)],
        "invalid_utf8": lambda draw, i: [Line(break_utf8(draw, draw(words).encode()), "invalid_utf8", "undecodable",
                                              "undecodable")],
        "random_bytes": lambda draw, i: [Line(random_bytes(draw), "random_bytes", "undecodable", "undecodable")],
        "nul": lambda draw, i: [text_line(f"{draw(words)}\x00{draw(words)}", "nul", KEPT, KEPT)],
        "controls_in_text": lambda draw, i: [text_line(
            draw(words) + draw(st.one_of(hard_controls, soft_controls)) + draw(words), "controls_in_text", KEPT, KEPT)],
        "controls_only_text": lambda draw, i: [text_line(draw(hard_controls), "controls_only_text", "no_tokens", KEPT)],
        "whitespace_only_text": lambda draw, i: [text_line(draw(soft_controls), "whitespace_only_text", "empty_line",
                                                           "empty_line")],
        "long_line": lambda draw, i: [text_line(long_text(draw, LONG_CHARS), "long_line", "too_many_chars", "too_many_chars")],
        "medium_line": lambda draw, i: [text_line(long_text(draw, MEDIUM_CHARS), "medium_line", KEPT, "too_many_chars")],
        "many_sentences": lambda draw, i: [text_line(draw(sentences), "many_sentences", KEPT, KEPT)],
        "cr_inside": lambda draw, i: [text_line(draw(words), "cr_inside", KEPT, KEPT, line_break="\r"),
                                      text_line(draw(words), "cr_inside", KEPT, KEPT)],
        "tabs_and_commas": lambda draw, i: [text_line(f"{draw(words)}\t{draw(words)}, {draw(words)}",
                                                      "tabs_and_commas", KEPT, KEPT)],
        "empty_line": lambda draw, i: [text_line(draw(blank), "empty_line", "empty_line", "empty_line")],
        "bom_in_line": lambda draw, i: [text_line(BOM + draw(words), "bom_in_line", KEPT, KEPT)],
    }


def jsonl_classes() -> dict[str, Callable]:
    """Line makers of a JSON Lines corpus: ``{"id", "text", "label"}`` objects, id column ``id``."""

    def obj(draw, i, **fields) -> dict:
        base = {"id": f"r{i}", "text": draw(words), "label": draw(st.one_of(labels, labels.map(str)))}
        return {k: v for k, v in {**base, **fields}.items() if v is not _DROP}

    def dumps(draw, value) -> str:
        return json.dumps(value, ensure_ascii=draw(st.booleans()))

    def line(draw, i, cls, pre, infer_, **fields) -> list[Line]:
        value = obj(draw, i, **fields)
        row_id = value.get("id") if isinstance(value.get("id"), str) else None
        return [text_line(dumps(draw, value), cls, pre, infer_, row_id)]

    def surrogate(draw) -> str:
        return chr(draw(st.integers(0xD800, 0xDFFF)))

    def lone_surrogate(draw, i, cls, pre, infer_, **fields) -> list[Line]:
        value = obj(draw, i, **fields)
        text = json.dumps(value, ensure_ascii=True)  # the only way to write a lone surrogate in UTF-8 JSON
        return [text_line(text, cls, pre, infer_, value["id"] if "\\u" not in json.dumps(value["id"]) else None)]

    def deep(draw, i) -> list[Line]:
        depth = draw(st.sampled_from([900, 5_000, 100_000]))
        opener = draw(st.sampled_from(["[", '{"a": ']))
        return [text_line(opener * depth, "deep_nesting", "malformed_json", "malformed_json")]

    def split_by_cr(draw, i) -> list[Line]:
        value = json.dumps(obj(draw, i), ensure_ascii=False)
        at = value.index('"text": "') + len('"text": "') + 1
        return [text_line(value[:at], "cr_inside", "malformed_json", "malformed_json", line_break="\r"),
                text_line(value[at:], "cr_inside", "malformed_json", "malformed_json")]

    def raw_control(draw, i) -> list[Line]:
        value = json.dumps(obj(draw, i), ensure_ascii=False)
        at = value.index('"text": "') + len('"text": "')
        control = draw(st.sampled_from([c for c in HARD_CONTROLS if c not in "\x7f\x80\x9f"]))
        return [text_line(value[:at] + control + value[at:], "raw_control_in_string", "malformed_json",
                          "malformed_json")]

    return {
        "valid": lambda draw, i: line(draw, i, "valid", KEPT, KEPT),
        "quoted": lambda draw, i: line(draw, i, "quoted", KEPT, KEPT,
                                       text=f'"{draw(words)}" \\ {draw(words)} \U0001F600'),
        "extra_columns": lambda draw, i: line(draw, i, "extra_columns", KEPT, KEPT, extra=[1, {"a": None}],
                                              more=draw(words)),
        "invalid_utf8": lambda draw, i: [Line(break_utf8(draw, json.dumps(obj(draw, i), ensure_ascii=False).encode()),
                                              "invalid_utf8", "undecodable", "undecodable")],
        "random_bytes": lambda draw, i: [Line(random_bytes(draw), "random_bytes", "undecodable", "undecodable")],
        "nul": lambda draw, i: line(draw, i, "nul", KEPT, KEPT, text=f"{draw(words)}\x00{draw(words)}"),
        "controls_in_text": lambda draw, i: line(draw, i, "controls_in_text", KEPT, KEPT,
                                                 text=draw(words) + draw(hard_controls) + draw(words)),
        "controls_only_text": lambda draw, i: line(draw, i, "controls_only_text", "no_tokens", KEPT,
                                                   text=draw(hard_controls)),
        "whitespace_only_text": lambda draw, i: line(draw, i, "whitespace_only_text", "empty_text", "empty_text",
                                                     text=draw(soft_controls)),
        "raw_control_in_string": raw_control,
        "long_line": lambda draw, i: line(draw, i, "long_line", "too_many_chars", "too_many_chars",
                                          text=long_text(draw, LONG_CHARS)),
        "medium_line": lambda draw, i: line(draw, i, "medium_line", KEPT, "too_many_chars",
                                            text=long_text(draw, MEDIUM_CHARS)),
        "many_sentences": lambda draw, i: line(draw, i, "many_sentences", KEPT, KEPT, text=draw(sentences)),
        "cr_inside": split_by_cr,
        "unbalanced_quote": lambda draw, i: [text_line(
            f'{{"id": "r{i}", "text": "{draw(words)}, "label": {draw(labels)}}}', "unbalanced_quote",
            "malformed_json", "malformed_json")],
        "missing_text": lambda draw, i: line(draw, i, "missing_column", "missing_column", "missing_column",
                                             text=_DROP),
        "missing_label": lambda draw, i: line(draw, i, "missing_column", "missing_column", KEPT, label=_DROP),
        "missing_id": lambda draw, i: line(draw, i, "missing_column", "missing_column", "missing_column", id=_DROP),
        "null_text": lambda draw, i: line(draw, i, "missing_value", "missing_value", "missing_value", text=None),
        "null_label": lambda draw, i: line(draw, i, "missing_value", "missing_value", KEPT, label=None),
        "not_text": lambda draw, i: line(draw, i, "not_text", "not_text", "not_text",
                                         text=draw(st.sampled_from([5, 1.5, True, [1, 2], {"a": "b"}]))),
        "bad_label": lambda draw, i: line(draw, i, "bad_label", "bad_label", KEPT, label=draw(st.one_of(
            bad_label_texts, st.sampled_from([True, False, 1.5, [1], {"a": 1}, float("nan")])))),
        "label_out_of_range": lambda draw, i: line(draw, i, "label_out_of_range", "bad_label", KEPT,
                                                   label=draw(st.one_of(out_of_range, out_of_range.map(str)))),
        "empty_label": lambda draw, i: line(draw, i, "empty_label", "bad_label", KEPT, label=""),
        "empty_text": lambda draw, i: line(draw, i, "empty_text", "empty_text", "empty_text",
                                           text=draw(st.sampled_from(["", " ", "\t "]))),
        "not_an_object": lambda draw, i: [text_line(draw(st.sampled_from(["[1, 2]", '"text"', "3", "null", "true",
                                                                          "{", "}", "{}x", "{'text': 'a'}"])),
                                                    "not_an_object", "malformed_json", "malformed_json")],
        "huge_number": lambda draw, i: [text_line(f'{{"id": "r{i}", "text": "a", "label": {"9" * 5000}}}',
                                                  "huge_number", "malformed_json", "malformed_json")],
        "deep_nesting": deep,
        "empty_line": lambda draw, i: [text_line(draw(blank), "empty_line", "empty_line", "empty_line")],
        "bom_in_line": lambda draw, i: [text_line(BOM + json.dumps(obj(draw, i)), "bom_in_line", "malformed_json",
                                                  "malformed_json")],
        "valid_surrogate_pair": lambda draw, i: [text_line(
            json.dumps(obj(draw, i, text=f"{draw(words)} \U0001F600"), ensure_ascii=True), "valid_surrogate_pair",
            KEPT, KEPT, f"r{i}")],
        "lone_surrogate_text": lambda draw, i: lone_surrogate(draw, i, "lone_surrogate_text", "undecodable",
                                                              "undecodable", text=draw(words) + surrogate(draw)),
        "lone_surrogate_id": lambda draw, i: lone_surrogate(draw, i, "lone_surrogate_id", "undecodable",
                                                            "undecodable", id=f"r{i}" + surrogate(draw)),
        # The label is not read at inference.
        "lone_surrogate_label": lambda draw, i: lone_surrogate(draw, i, "lone_surrogate_label", "bad_label", KEPT,
                                                               label=surrogate(draw)),
        "lone_surrogate_key": lambda draw, i: lone_surrogate(draw, i, "lone_surrogate_key", "missing_column",
                                                             "missing_column", text=_DROP,
                                                             **{"te" + surrogate(draw): draw(words)}),
    }


_DROP = object()

FORMATS = {
    "csv": Format(
        "csv", "corpus.csv", "sentence,label",
        {"format": "csv", "text_column": "sentence", "label_column": "label"},
        {"name": "emoji", "kind": "classifier", "classes": EMOJI_CLASSES}, {"max_length": 8},
        delimited_classes(",", "classifier", quoting=True, header=True)),
    "tsv": Format(
        "tsv", "pairs.tsv", None,
        {"format": "tsv", "header": False, "text_column": 0, "target_column": 1},
        {"name": "translate", "kind": "seq2seq"}, {"max_length": 8, "max_target_length": 10},
        delimited_classes("\t", "seq2seq", quoting=True)),
    "anki": Format(
        "anki", "spa.txt", None, {"format": "anki"},
        {"name": "translate", "kind": "seq2seq"}, {"max_length": 8, "max_target_length": 10},
        delimited_classes("\t", "seq2seq", quoting=False)),
    "text": Format(
        "text", "names.txt", None, {"format": "text"},
        {"name": "names", "kind": "lm"}, {"tokenizer": {"level": "char"}, "max_length": 16},
        text_classes()),
    "jsonl": Format(
        "jsonl", "rows.jsonl", None,
        {"format": "jsonl", "text_column": "text", "label_column": "label", "id_column": "id"},
        {"name": "emoji", "kind": "classifier", "classes": EMOJI_CLASSES}, {"max_length": 8},
        jsonl_classes()),
}

# ------------------------------------------------------------------------------ corpora


@dataclasses.dataclass
class Corpus:
    fmt: Format
    data: bytes
    lines: list[Line]  # the records, in file order
    breaks: tuple[str, ...] = ()  # the line break after each record ("" for a last line without one)
    bom: bool = False  # the file starts with a BOM

    def __repr__(self) -> str:  # what hypothesis prints of a failing example: the lines, long ones cut
        lines = "\n".join(f"  {self.line_id(i)} {line.cls}: {line.data[:100]!r}{'...' if len(line.data) > 100 else ''}"
                          f" -> {line.pre} / {line.infer}" for i, line in enumerate(self.lines))
        return f"Corpus({self.fmt.name}, {len(self.data)} bytes, starts {self.data[:40]!r}):\n{lines}"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))

    def line_id(self, index: int) -> str:
        return f"{self.fmt.file_name}:{self.line_starts[index + (self.fmt.header is not None)]}"

    @functools.cached_property
    def line_starts(self) -> list[int]:
        """The byte offset of each physical line (the module docstring's rule), header included."""
        starts = [0] + [match.end() for match in re.finditer(rb"\r\n|\r|\n", self.data)]
        if starts[-1] == len(self.data):
            starts.pop()
        return starts


def physical_lines(data: bytes) -> list[bytes]:
    """The lines the readers see in a file's bytes (the module docstring's rule), header included."""
    if data.startswith(BOM.encode()):
        data = data[len(BOM.encode()):]
    lines = re.split(rb"\r\n|\r|\n", data)
    if lines[-1] == b"":
        lines.pop()
    return lines


@st.composite
def corpora(draw, fmt: Format, extra: tuple[int, int] = (0, 40), min_valid: int = 4) -> Corpus:
    """A corpus holding every class of ``fmt`` at least once, ``min_valid`` valid rows and
    ``extra`` (min, max) more records of any class."""
    names = sorted(fmt.classes)
    # 1 MB lines cost time in every step, not coverage: one of each class per corpus.
    common = [name for name in names if name not in ("long_line", "long_quoted", "long_target")]
    chosen = names + ["valid"] * min_valid + draw(st.lists(st.sampled_from(common), min_size=extra[0],
                                                           max_size=extra[1]))
    order = draw(st.permutations(chosen))
    lines: list[Line] = []
    for index, cls in enumerate(order):
        lines += fmt.classes[cls](draw, index)
    # Line breaks: any convention per line; a CR inside a record is the break of its head.
    header = [Line(fmt.header.encode(), "header", None, None)] if fmt.header is not None else []
    everything = header + lines
    breaks = []
    for k, line in enumerate(everything):
        brk = line.line_break or draw(st.sampled_from(["\n", "\r\n", "\r"]))
        # "\r" then "\n" is one break: an empty line after a lone CR must not start with "\n".
        if k and breaks[-1] == "\r" and not line.data and brk == "\n":
            brk = "\r"
        breaks.append(brk)
    # The last line may lack its break, unless it is empty (it would not be a line then).
    if everything[-1].data and draw(st.booleans()):
        breaks[-1] = ""
    body = b"".join(line.data + brk.encode() for line, brk in zip(everything, breaks))
    # A BOM opening the file is skipped: keep a line's own BOM as text by putting the file's first.
    bom = draw(st.booleans()) or body.startswith(BOM.encode())
    data = (BOM.encode() if bom else b"") + body
    assert physical_lines(data) == [line.data for line in everything], "the generator broke its own line rule"
    return Corpus(fmt, data, lines, tuple(breaks[len(header):]), bom)


# ------------------------------------------------------------------------------ outcomes


TALLY: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def fuzz_report():
    yield
    path = os.environ.get("SEQBEAM_FUZZ_REPORT")
    if path:
        rows = [{"suite": s, "job": j, "format": f, "class": c, "outcome": o, "rows": n}
                for (s, j, f, c, o), n in sorted(TALLY.items())]
        Path(path).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def check_outcomes(corpus: Corpus, kept_ids: list[str], rejected: list[dict], job: str, suite: str,
                   known: dict[str, set], expected_of: Callable[[Line], Optional[str]]) -> None:
    """Every line in exactly one place (by id), rejections specific, outcomes as expected."""
    index_of: dict[str, int] = {}
    for index, line in enumerate(corpus.lines):
        for row_id in (corpus.line_id(index), line.row_id):
            if row_id is not None:
                assert row_id not in index_of, f"test corpus has a duplicate id {row_id!r}"
                index_of[row_id] = index
    outcome: dict[int, tuple[str, str]] = {}

    def place(row_id: str, what: tuple[str, str]) -> None:
        assert row_id in index_of, f"{job}: output id {row_id!r} is no input record ({what})"
        index = index_of[row_id]
        assert index not in outcome, (f"{job}: record {corpus.line_id(index)} ended in two places: "
                                      f"{outcome[index]} and {what}")
        outcome[index] = what

    for record in rejected:
        stage, code = record["stage"], record["code"]
        assert code in known.get(stage, ()), f"{job}: unknown or generic rejection {stage}/{code}: {record['reason']}"
        assert record["reason"] == code or record["reason"].startswith(code + ": "), record["reason"]
        place(record["id"], (stage, code))
    for row_id in kept_ids:
        place(row_id, ("", KEPT))
    lost = [corpus.line_id(i) for i in range(len(corpus.lines)) if i not in outcome]
    assert not lost, f"{job}: records lost: {lost[:10]}"
    for index, line in enumerate(corpus.lines):
        stage, got = outcome[index]
        shown = got if got == KEPT else f"{stage}/{got}"
        TALLY[(suite, job, corpus.fmt.name, line.cls, shown)] += 1
        if corpus.breaks:  # rows per line break convention, and the first row after a BOM
            name = {"\n": "LF", "\r\n": "CRLF", "\r": "lone CR", "": "no final break"}[corpus.breaks[index]]
            TALLY[(suite, job, corpus.fmt.name, f"line break: {name}", shown)] += 1
        if corpus.bom and index == 0 and corpus.fmt.header is None:
            TALLY[(suite, job, corpus.fmt.name, "first record after a file BOM", shown)] += 1
        want = expected_of(line)
        if want is not None:
            assert got == want, (f"{job}: {line.cls} line {corpus.line_id(index)} {line.data[:120]!r}: "
                                 f"expected {want}, got {stage}/{got}")


# ------------------------------------------------------------------------------ DoFns directly


def _split(outputs) -> tuple[list, list[dict]]:
    main, rejected = [], []
    for out in outputs:
        if isinstance(out, TaggedOutput):
            if out.tag == REJECTED:
                rejected.append(out.value)
        else:
            main.append(out)
    return main, rejected


_SOURCE_DIR = tempfile.mkdtemp(prefix="seqbeam-fuzz-")


def read_directly(data: DataConfig, path: str, payload: bytes, batch_size: int = 7) -> tuple[list, list[dict]]:
    """The rows and read rejections of a file, from the source and the parser DoFn the pipeline uses.

    The file is read in eight byte ranges or more (of 61 bytes at least), as a runner
    splitting it would: lines straddling the split points must still be read once each.
    """
    path = os.path.join(_SOURCE_DIR, os.path.basename(path))
    with open(path, "wb") as f:
        f.write(payload)
    source = readers.LineSource(path, os.path.dirname(path), batch_size, header=readers._has_header(data))
    parser = readers._line_parser_for(data)
    batches, rejected = [], []
    for bundle in source.split(desired_bundle_size=max(61, len(payload) // 8)):
        tracker = bundle.source.get_range_tracker(bundle.start_position, bundle.stop_position)
        for chunk in bundle.source.read(tracker):
            main, more = _split(parser.process(chunk))
            batches += main
            rejected += more
    batches = [rows_of(b) for b in batches]
    assert all(isinstance(b, list) and 0 < len(b) <= batch_size for b in batches)
    return [row for batch in batches for row in batch], rejected


def assert_writable(rejected: list[dict], rows: list) -> None:
    """Rejected records go to Parquet, rows to TensorFlow and Parquet: all must be UTF-8."""
    if rejected:
        pa.Table.from_pylist(rejected, schema=REJECTED_SCHEMA)
    for row in rows:
        for value in (row.id, row.text, row.target):
            if isinstance(value, str):
                value.encode("utf-8")


def run_dofns(corpus: Corpus) -> None:
    fmt = corpus.fmt
    path = f"/fuzz/{fmt.file_name}"
    config = fmt.config(path, "/nonexistent")
    # Preprocessing, up to validation (the encoder's no_tokens rows pass validation).
    rows, rejected = read_directly(config.data, path, corpus.data)
    assert_writable(rejected, rows)
    kept = []
    for start in range(0, len(rows), 16):
        batches, more = _split(ValidateBatches(config).process(rows[start:start + 16]))
        rejected += more
        kept += [row_id for batch in batches if isinstance(batch, RowBatch) for row_id in batch.ids]
    assert_writable(rejected, [])
    known = {stage: codes for stage, codes in PREPROCESS_CODES.items() if stage != "encode"}
    check_outcomes(corpus, kept, rejected, "read+validate", "dofn", known,
                   lambda line: KEPT if line.pre in PREPROCESS_CODES["encode"] else line.pre)
    # Inference, up to the model: the reader of infer.input, then the row checks.
    data = serving.input_data(dataclasses.replace(config, infer=dataclasses.replace(config.infer, input=config.data)))
    rows, rejected = read_directly(data, path, corpus.data)
    assert_writable(rejected, rows)
    keyed, more = _split(KeyExamples(config.infer.max_chars, sentences=True).process(rows))
    rejected += more
    check_outcomes(corpus, [key for batch in keyed for key, _ in batch], rejected, "infer read+check", "dofn",
                   {"read": READ_CODES, "validate": INFER_CODES["validate"]}, lambda line: line.infer)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@DOFN
@given(data=st.data())
def test_readers_and_row_checks_account_for_every_record(fmt, data):
    run_dofns(data.draw(corpora(FORMATS[fmt]), label="corpus"))


# ------------------------------------------------------------------------------ unit properties


@UNIT
@given(value=st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none(),
                       st.lists(st.integers(), max_size=2)),
       num_classes=st.integers(2, 10))
@example(value="²", num_classes=5)
@example(value="9" * 5000, num_classes=5)
@example(value="٣", num_classes=5)
def test_parse_label_never_raises_and_takes_only_ascii_integers_in_range(value, num_classes):
    label, why = parse_label(value, num_classes)
    if label is None:
        assert why.startswith("label ")
    else:
        assert why == "" and 0 <= label < num_classes
        assert isinstance(value, int) or _INTEGER.fullmatch(str(value).strip())


# Any text, lone surrogates included (what surrogateescape and JSON escapes can make), and
# words with one of them.
any_text = st.text(st.characters(exclude_categories=())) | st.builds(
    lambda a, c, b: a + c + b, words, st.characters(categories=["Cs"]), words | st.just(""))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=6)


@UNIT
@given(row_id=any_text, raw=st.one_of(any_text, st.binary()), detail=any_text)
@example(row_id="a\ud800", raw="\udcff\ud83d", detail="keys: te\udfff")
def test_rejected_records_are_always_utf8(row_id, raw, detail):
    record = rejection(row_id, raw, "read", "undecodable", detail)
    pa.Table.from_pylist([record], schema=REJECTED_SCHEMA)
    if isinstance(raw, str) and not any("\ud800" <= c <= "\udfff" for c in raw):
        assert record["raw"] == raw  # only what UTF-8 cannot hold is escaped


@settings(UNIT, max_examples=200)
@given(record=st.builds(
    lambda fields, extra: {**extra, **fields},
    st.fixed_dictionaries({}, optional={"id": any_text | st.integers() | json_values,
                                        "text": words | any_text | json_values,
                                        "label": labels | labels.map(str) | any_text | json_values}),
    st.dictionaries(any_text, json_values, max_size=2)) | json_values,
    ensure_ascii=st.booleans())
@example(record={"text": [None, None]}, ensure_ascii=False)  # Arrow cannot combine a list<null> column
@example(record={"text": "ok", "label": [None]}, ensure_ascii=True)
def test_any_json_value_on_a_line_is_a_row_or_a_specific_rejection(record, ensure_ascii):
    try:
        line = json.dumps(record, ensure_ascii=ensure_ascii).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate written raw: the file holds its escape
        line = json.dumps(record, ensure_ascii=True).encode("utf-8")
    config = FORMATS["jsonl"].config("/fuzz/rows.jsonl", "/nonexistent")
    rows, rejected = read_directly(config.data, "/fuzz/rows.jsonl", line + b"\n")
    assert len(rows) + len(rejected) == 1
    for row in rows:  # what validation and the inference checks get: any outcome, never an exception
        _, more = _split(ValidateBatches(config).process([row]))
        _, more_infer = _split(KeyExamples(config.infer.max_chars, sentences=True).process([row]))
        rejected += more + more_infer
    assert all(r["code"] in READ_CODES | PREPROCESS_CODES["validate"] for r in rejected)
    assert_writable(rejected, rows)


# ------------------------------------------------------------------------------ regressions


# The smallest inputs that crashed a job before the fixes, or got a wrong code: each
# (jsonl line, class, preprocessing outcome, inference outcome, id once parsed).
REGRESSIONS = [
    ('{"id": "a\\ud800", "text": "love you", "label": 1}', "lone_surrogate_id", "undecodable", "undecodable",
     None),  # crashed both jobs: the id is no UTF-8 (split hash, Beam's coders, Parquet)
    ('{"id": "c", "text": "love you", "label": "\\udfff"}', "lone_surrogate_label", "bad_label", KEPT,
     "c"),  # crashed preprocessing: the rejected record's raw input is no UTF-8 (Beam's coders)
    ('{"id": "d", "te\\ud800": "love you", "label": 1}', "lone_surrogate_key", "missing_column", "missing_column",
     None),  # crashed both jobs: the rejected record's reason names the keys, no UTF-8
    ("[" * 5_000, "deep_nesting", "malformed_json", "malformed_json", None),  # RecursionError in json.loads
    ('{"id": "f", "text": "love you", "label": "\u00b2"}', "bad_label", "bad_label", KEPT,
     "f"),  # crashed preprocessing: "²".isdigit() but int("²") raises
    ('{"id": "g", "text": "love you", "label": "' + "9" * 5000 + '"}', "bad_label", "bad_label", KEPT,
     "g"),  # crashed preprocessing: int() takes at most 4,300 digits
]


def regression_corpus(valid: int = 0) -> Corpus:
    rows = [(json.dumps({"id": f"v{i}", "text": f"we love food {i}", "label": i % NUM_CLASSES}), "valid", KEPT, KEPT,
             f"v{i}") for i in range(valid)] + REGRESSIONS
    lines = [Line(text.encode(), cls, pre, infer_, row_id) for text, cls, pre, infer_, row_id in rows]
    return Corpus(FORMATS["jsonl"], b"".join(line.data + b"\n" for line in lines), lines)


def test_regressions_at_the_dofns():
    run_dofns(regression_corpus())
    # A quoted field over the csv module's 128 KiB field limit was malformed_csv: it is a long text.
    line = b'"' + b"ab " * 50_000 + b'",1'
    run_dofns(Corpus(FORMATS["csv"], b"sentence,label\n" + line + b"\n",
                     [Line(line, "long_quoted", "too_many_chars", "too_many_chars")]))


# ------------------------------------------------------------------------------ the jobs


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def emoji_model(shared_emoji):
    """The session's small Emojifier-V1 (conftest.SHARED_EMOJI_TRAIN): (its config, its model path)."""
    config = shared_emoji.config
    return config, serving.plan_serving(config).model_path


def preprocess_rejected(data_dir: str) -> list[dict]:
    return read_rejected(os.path.join(data_dir, "rejected"))


def run_jobs(corpus: Corpus, emoji_model, folder: Path) -> None:
    fmt = corpus.fmt
    path = folder / fmt.file_name
    path.write_bytes(corpus.data)
    n = len(corpus.lines)

    config = fmt.config(str(path), str(folder / "out"))
    metadata = preprocess.run_config(config, save_main_session=False)
    rows = metadata["rows"]
    assert rows["in"] == rows["train"] + rows["valid"] + rows["test"] + rows["rejected"] == n, rows
    data_dir = layout.data_dir(config)
    written = [r["id"] for split in ("train", "valid", "test") for r in read_examples(data_dir, split)]
    rejected = preprocess_rejected(data_dir)
    assert len(rejected) == rows["rejected"] == sum(metadata["rejected"]["by_stage"].values())
    check_outcomes(corpus, written, rejected, "preprocess", "pipeline", PREPROCESS_CODES, lambda line: line.pre)

    model_config, model_path = emoji_model
    infer_config = dataclasses.replace(
        model_config, output_dir=str(folder / "infer"),
        infer=dataclasses.replace(model_config.infer, input=config.data, model_path=model_path,
                                  max_batch_size=32, min_batch_size=1))
    infer.run_config(infer_config, save_main_session=False)
    summary = json.loads(Path(layout.infer_summary_path(infer_config)).read_text(encoding="utf-8"))
    counts = summary["rows"]
    assert counts["in"] == counts["out"] + counts["rejected"] == n, counts
    predicted = pq.read_table(summary["predictions"], columns=["id"]).column("id").to_pylist()
    rejected = pq.read_table(summary["rejected"]).to_pylist()
    assert (len(predicted), len(rejected)) == (counts["out"], counts["rejected"])
    check_outcomes(corpus, predicted, rejected, "infer", "pipeline", INFER_CODES, lambda line: line.infer)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@PIPELINE
@given(data=st.data())
@pytest.mark.slow
def test_jobs_never_crash_and_account_for_every_record(fmt, data, emoji_model, workdir):
    # Enough valid rows that some reach the train split (the job fails without one, by design).
    corpus = data.draw(corpora(FORMATS[fmt], extra=(60, 150), min_valid=30), label="corpus")
    run_jobs(corpus, emoji_model, Path(tempfile.mkdtemp(dir=workdir)))


@pytest.mark.slow
def test_regressions_through_both_jobs(emoji_model, workdir):
    run_jobs(regression_corpus(valid=12), emoji_model, Path(tempfile.mkdtemp(dir=workdir)))
