"""The Arrow fast path of the CSV/TSV/Anki/text/JSONL readers gives what the Python line parser gives.

Both parsers read the fuzz corpora of ``test_fuzz`` (every class of bad input, any line
break, BOMs, byte-range splits) through the same source; their rows, read rejections
(ids, raw text, reasons) and, after validation, their row batches and validation rejections
must be equal, in order, and so must the inference row checks' outputs (rows cut into
sentences, rejections). The comparison must see the fast path taken: a corpus whose
blocks all fall back to the line parser would prove nothing.
"""

from __future__ import annotations

import collections
import os
import sys

import pyarrow as pa
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from seqbeam.transforms import readers
from seqbeam.transforms.arrow_lines import PYTHON_WHITESPACE, python_strip
from seqbeam.transforms.records import RowBatch, rows_of
from seqbeam.transforms.validate import KeyExamples, ValidateBatches

from test_fuzz import DOFN, FORMATS, _SOURCE_DIR, _split, corpora

ARROW_FORMATS = ("csv", "tsv", "anki", "text", "jsonl")
TAKEN: collections.Counter = collections.Counter()


def parse(fmt: str, payload: bytes, use_arrow: bool, batch_size: int = 7) -> list[tuple]:
    """Every output of reading then validating the file, in order: rows, rejections, batches."""
    config = FORMATS[fmt].config(f"/fuzz/{FORMATS[fmt].file_name}", "/nonexistent")
    path = os.path.join(_SOURCE_DIR, f"arrow-{FORMATS[fmt].file_name}")
    with open(path, "wb") as f:
        f.write(payload)
    source = readers.LineSource(path, os.path.dirname(path), batch_size, header=readers._has_header(config.data))
    parser = readers._line_parser_for(config.data)
    parser.use_arrow = use_arrow
    outputs = []
    for bundle in source.split(desired_bundle_size=max(61, len(payload) // 8)):
        tracker = bundle.source.get_range_tracker(bundle.start_position, bundle.stop_position)
        for block in bundle.source.read(tracker):
            main, rejected = _split(parser.process(block))
            outputs += [("read_rejected", r) for r in rejected]
            for batch in main:
                TAKEN[use_arrow and isinstance(batch, pa.Table)] += 1
                TAKEN[fmt, use_arrow and isinstance(batch, pa.Table)] += 1
                rows = rows_of(batch)
                outputs.append(("rows", rows))
                validated, more = _split(ValidateBatches(config).process(batch))
                outputs += [("validate_rejected", r) for r in more]
                outputs += [("valid", (b.ids, b.texts, b.targets, b.labels, b.splits))
                            for b in validated if isinstance(b, RowBatch)]
                keyed, more = _split(KeyExamples(config.infer.max_chars, sentences=True).process(batch))
                outputs += [("infer_rejected", r) for r in more]
                outputs += [("keyed", list(b)) for b in keyed]
    return outputs


@pytest.mark.parametrize("fmt", ARROW_FORMATS)
@settings(DOFN, max_examples=30, phases=(Phase.explicit, Phase.generate))  # a failure shrinks for minutes
@given(data=st.data())
def test_arrow_and_line_parser_agree_on_the_fuzz_corpora(fmt, data):
    corpus = data.draw(corpora(FORMATS[fmt], extra=(0, 60), min_valid=20), label="corpus")
    fast, slow = parse(fmt, corpus.data, use_arrow=True), parse(fmt, corpus.data, use_arrow=False)
    first = next((i for i, (a, b) in enumerate(zip(fast, slow)) if a != b), min(len(fast), len(slow)))
    assert fast == slow, (f"output {first} differs: arrow {fast[first:first + 1]!r:.2000} "
                          f"line parser {slow[first:first + 1]!r:.2000}")


def test_the_fast_path_was_taken():
    """Runs after the comparisons (file order): some of their blocks went through Arrow."""
    assert TAKEN[True] > 20, TAKEN
    assert all(TAKEN[fmt, True] > 0 for fmt in ARROW_FORMATS), TAKEN


def test_python_whitespace_is_what_str_strip_strips():
    assert set(PYTHON_WHITESPACE) == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    strings = ["\u3000 a\x1c", "\x85\xa0", "b\u200b", ""]
    assert python_strip(pa.array(strings)).to_pylist() == [s.strip() for s in strings]


CLEAN_BLOCKS = [
    ("csv", b'sentence,label\n"I love you, too",0\nfood is great,4\n'),
    ("csv", b'sentence,label\r\n"He said ""hi""",1\r\nok , 2 \r\n'),
    ("csv", '\ufeffsentence,label\nd\u00e9j\u00e0 vu\u3000,3\nlast line without break,1'.encode()),
    ("csv", b'sentence,label\n007 bond,007\nneg,-0\n'),
    ("text", b"I love you. Lets eat!\nso sad\n"),
    ("text", "\ufeffd\u00e9j\u00e0 vu\u3000 \r\n  spaced  \rlast line without break. ".encode()),
    ("text", "a\u2028b\x0bc\x85! \ufeffinner bom\n".encode()),
    ("jsonl", b'{"id": "a", "text": "I love you. Lets eat!", "label": 0}\n{"text": "so sad", "label": 3, "id": "7"}\n'),
    ("jsonl", '{"text": "d\u00e9j\u00e0 vu", "label": 2, "id": -1, "extra": [1, {"x": null}]}\r\n'
              '{"label": 4, "id": "z", "text": "caf\\u00e9 \\ud83d\\ude00"}'.encode()),
]


@pytest.mark.parametrize("fmt, payload", CLEAN_BLOCKS)
def test_clean_blocks_are_read_by_arrow_and_match(fmt, payload):
    before = TAKEN[True]
    fast, slow = parse(fmt, payload, use_arrow=True, batch_size=64), parse(fmt, payload, False, 64)
    assert fast == slow
    assert TAKEN[True] > before


def test_the_preprocessing_job_writes_the_same_bytes_with_either_parser(tmp_path, monkeypatch):
    """The whole job on a CSV with clean and malformed lines: every output file byte for byte."""
    import glob
    import gzip

    from seqbeam.configs.schema import config_from_dict
    from seqbeam.pipelines import preprocess

    lines = [b"sentence,label"] + [f'"I love you, {i}",{i % 5}'.encode() if i % 3 else f"food {i},4".encode()
                                   for i in range(300)]
    lines[57], lines[123], lines[200] = b'"open quote,1', b"\xff bad bytes,2", b"too,many,fields"
    (tmp_path / "corpus.csv").write_bytes(b"\n".join(lines) + b"\n")
    from seqbeam.transforms.arrow_lines import ArrowDelimited

    parse_block = ArrowDelimited.table

    def counted(self, block, header_names):
        table = parse_block(self, block, header_names)
        TAKEN["job"] += table is not None
        return table

    monkeypatch.setattr(ArrowDelimited, "table", counted)
    outputs = {}
    for use_arrow in (True, False):
        monkeypatch.setattr(readers.ParseDelimitedLines, "use_arrow", use_arrow)
        config = config_from_dict({
            "task": {"name": "emoji", "kind": "classifier", "classes": ["a", "b", "c", "d", "e"]},
            "data": {"format": "csv", "path": str(tmp_path / "corpus.csv"), "header": True,
                     "text_column": "sentence", "label_column": "label"},
            "preprocess": {"num_shards": 1, "batch_size": 16, "max_length": 8},
            "output_dir": str(tmp_path / f"out-{use_arrow}"),
        }, source="test_arrow_lines")
        metadata = preprocess.run_config(config, ["--direct_running_mode=in_memory"], save_main_session=False)
        data_dir = tmp_path / f"out-{use_arrow}" / "emoji" / "data"
        files = {}
        for path in sorted(glob.glob(str(data_dir / "**" / "*"), recursive=True)):
            if path.endswith((".tfrecord.gz", ".parquet", ".txt")):
                with open(path, "rb") as f:
                    content = f.read()
                files[os.path.relpath(path, data_dir)] = gzip.decompress(content) if path.endswith(".gz") else content
        outputs[use_arrow] = (files, metadata["rows"])
    assert outputs[True] == outputs[False]
    assert outputs[True][1]["rejected"] == 3 and TAKEN["job"] > 0  # Arrow read some blocks of the first run
