"""Tests for the corpus readers (transforms/readers.py), run in a local Beam pipeline.

Every test writes its own small corpus under ``tmp_path``. Rows are compared whole;
rejected records on ``(id, code)`` (and on ``raw`` where the raw text matters), and every
rejected record is checked to have the documented shape.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from seqbeam.configs.schema import ConfigError, DataConfig
from seqbeam.pipelines.options import pipeline_options
from seqbeam.transforms.readers import ReadCorpus
from seqbeam.transforms.records import RowBatch, rows_of
from seqbeam.transforms.records import Row

from conftest import line_id as at

REJECT_KEYS = {"id", "raw", "stage", "code", "reason"}


def _write(path: Path, content: bytes | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    if path.suffix == ".gz":
        content = gzip.compress(content)
    path.write_bytes(content)
    return str(path)


def _id_and_code(record: dict) -> tuple[str, str]:
    return record["id"], record["code"]


def _check_reject_shape(record: dict) -> None:
    if set(record) != REJECT_KEYS:
        raise BeamAssertException(f"rejected record keys {sorted(record)} != {sorted(REJECT_KEYS)}")
    if record["stage"] != "read":
        raise BeamAssertException(f"stage {record['stage']!r} != 'read' in {record}")
    if not record["reason"].startswith(record["code"]):
        raise BeamAssertException(f"reason does not start with the code: {record}")
    if not isinstance(record["raw"], str) or not isinstance(record["id"], str) or not record["id"]:
        raise BeamAssertException(f"raw and id must be strings (id non-empty): {record}")


def _checked(reject_key: Callable[[dict], Any]) -> Callable[[dict], Any]:
    """The reject key, after checking the record has the documented shape."""

    def key(record: dict) -> Any:
        _check_reject_shape(record)
        return reject_key(record)

    return key


def _pipeline() -> beam.Pipeline:
    return BeamTestPipeline(options=pipeline_options([]))


def read(
    data: DataConfig,
    rows: Iterable[Row],
    rejects: Iterable[Any] = (),
    reject_key: Callable[[dict], Any] = _id_and_code,
) -> None:
    """Runs ReadCorpus(data) and asserts both of its outputs."""
    read_all([(data, rows, rejects, reject_key)])


def read_all(cases: list[tuple]) -> None:
    """Several ReadCorpus cases ``(data, rows[, rejects[, reject_key]])`` in one pipeline."""
    with _pipeline() as p:
        for i, (data, rows, *rest) in enumerate(cases):
            rejects = rest[0] if rest else ()
            reject_key = rest[1] if len(rest) > 1 else _id_and_code
            out = p | f"Read{i}" >> ReadCorpus(data, batch_size=2)
            assert set(out) == {"batches", "rejected"}
            flat = out["batches"] | f"Rows{i}" >> beam.FlatMap(rows_of)
            assert_that(flat, equal_to(list(rows)), label=f"rows{i}")
            assert_that(
                out["rejected"] | f"RejectKey{i}" >> beam.Map(_checked(reject_key)),
                equal_to(list(rejects)),
                label=f"rejected{i}",
            )


# --- the runner ---------------------------------------------------------------------


def test_test_pipeline_uses_the_local_runner():
    p = _pipeline()
    assert type(p.runner).__name__ == "FnApiRunner"


def test_a_wrong_expectation_fails(tmp_path):
    """The assertions are live: a wrong expected row makes the pipeline fail."""
    path = _write(tmp_path / "t.txt", "alpha\n")
    with pytest.raises(Exception, match="alpha"):
        read(DataConfig(format="text", path=path), [Row(at(path, 1), "beta")])


# --- CSV ----------------------------------------------------------------------------


def test_csv_with_header_and_named_columns(tmp_path):
    path = _write(
        tmp_path / "emoji.csv",
        "id,sentence,label\n"
        "a,I love you,0\n"
        'b,"Let us play, ball",1\n'
        'c,"she said ""hi"" to me",2\n',
    )
    read_all([
        (
            DataConfig(format="csv", path=path, text_column="sentence", label_column="label"),
            [
                Row(at(path, 2), "I love you", label="0"),
                Row(at(path, 3), "Let us play, ball", label="1"),
                Row(at(path, 4), 'she said "hi" to me', label="2"),
            ],
        ),
        # The same file with the id column used as the row id.
        (
            DataConfig(format="csv", path=path, text_column="sentence", label_column="label", id_column="id"),
            [
                Row("a", "I love you", label="0"),
                Row("b", "Let us play, ball", label="1"),
                Row("c", 'she said "hi" to me', label="2"),
            ],
        ),
    ])


def test_csv_header_columns_in_any_order(tmp_path):
    path = _write(tmp_path / "x.csv", "label, sentence\n3,feeling down\n")
    read(
        DataConfig(format="csv", path=path, text_column="sentence", label_column="label"),
        [Row(at(path, 2), "feeling down", label="3")],
    )


def test_emojiset_format(tmp_path):
    """No header, positional columns, CRLF, empty and ' [0]' trailing columns, stray tabs."""
    path = _write(
        tmp_path / "train_emoji.csv",
        b"never talk to me again,3,,\r\n"
        b'"I want to eat\t",4\r\n'
        b"work is hard,3,, [0]\r\n"
        b"he did not answer,3, [0]\r\n"
        b'"a, b and c",2\r\n'
        b'"she said ""yes""",0\r\n'
        b"I am upset\t,3\r\n",
    )
    read(
        DataConfig(format="csv", path=path, header=False, text_column=0, label_column=1),
        [
            Row(at(path, 1), "never talk to me again", label="3"),
            Row(at(path, 2), "I want to eat", label="4"),
            Row(at(path, 3), "work is hard", label="3"),
            Row(at(path, 4), "he did not answer", label="3"),
            Row(at(path, 5), "a, b and c", label="2"),
            Row(at(path, 6), 'she said "yes"', label="0"),
            Row(at(path, 7), "I am upset", label="3"),
        ],
    )


def test_csv_bad_lines_are_rejected_and_the_rest_is_read(tmp_path):
    path = _write(
        tmp_path / "bad.csv",
        b"good one,1\n"                  # 1
        b'"unbalanced quote,2\n'         # 2 malformed_csv
        b"still read,3\n"                # 3
        b'"closed"junk,4\n'              # 4 malformed_csv: text after a closing quote
        b"no label here\n"               # 5 missing_column
        b"\n"                            # 6 empty_line
        b"   \t \n"                      # 7 empty_line (blank)
        b"caf\xff\xfe menu,4\n"          # 8 undecodable
        b"last one,0",                   # 9 no final newline
    )
    read(
        DataConfig(format="csv", path=path, header=False, text_column=0, label_column=1),
        [
            Row(at(path, 1), "good one", label="1"),
            Row(at(path, 3), "still read", label="3"),
            Row(at(path, 9), "last one", label="0"),
        ],
        [
            (at(path, 2), "malformed_csv"),
            (at(path, 4), "malformed_csv"),
            (at(path, 5), "missing_column"),
            (at(path, 6), "empty_line"),
            (at(path, 7), "empty_line"),
            (at(path, 8), "undecodable"),
        ],
    )


def test_undecodable_raw_is_kept_escaped(tmp_path):
    path = _write(tmp_path / "u.txt", b"fine\n\xff\xfe\nab\xffcd\ntail\n")
    read(
        DataConfig(format="text", path=path),
        [Row(at(path, 1), "fine"), Row(at(path, 4), "tail")],
        [
            (at(path, 2), "undecodable", "\\xff\\xfe"),
            (at(path, 3), "undecodable", "ab\\xffcd"),
        ],
        reject_key=lambda r: (r["id"], r["code"], r["raw"]),
    )


def test_csv_with_header_missing_value_is_rejected(tmp_path):
    path = _write(tmp_path / "h.csv", "sentence,label\nok,1\nshort\n\n")
    read(
        DataConfig(format="csv", path=path, text_column="sentence", label_column="label"),
        [Row(at(path, 2), "ok", label="1")],
        [(at(path, 3), "missing_column"), (at(path, 4), "empty_line")],
    )


def test_utf8_bom_is_skipped(tmp_path):
    bom = b"\xef\xbb\xbf"
    with_header = _write(tmp_path / "h.csv", bom + "sentence,label\r\ncafé au lait,4\r\n".encode())
    no_header = _write(tmp_path / "n.csv", bom + b"hello,2\nbye,3\n")
    text = _write(tmp_path / "t.txt", bom + b"first\n")
    read_all([
        (
            DataConfig(format="csv", path=with_header, text_column="sentence", label_column="label"),
            [Row(at(with_header, 2), "café au lait", label="4")],
        ),
        (
            DataConfig(format="csv", path=no_header, header=False, text_column=0, label_column=1),
            [Row(at(no_header, 1), "hello", label="2"), Row(at(no_header, 2), "bye", label="3")],
        ),
        (DataConfig(format="text", path=text), [Row(at(text, 1), "first")]),
    ])


def test_cr_only_line_endings_split_lines(tmp_path):
    path = _write(tmp_path / "mac.csv", b"one,1\rtwo,2\r\rthree,3\r")
    read(
        DataConfig(format="csv", path=path, header=False, text_column=0, label_column=1),
        [Row(at(path, 1), "one", label="1"), Row(at(path, 2), "two", label="2"), Row(at(path, 4), "three", label="3")],
        [(at(path, 3), "empty_line")],
    )


# --- TSV and Anki pairs -------------------------------------------------------------


def test_tsv_with_header(tmp_path):
    path = _write(tmp_path / "s.tsv", "uid\tsentence\tlabel\nr1\thello, world\t1\nr2\t  padded  \t0\nr3\tno label\n")
    read(
        DataConfig(format="tsv", path=path, text_column="sentence", label_column="label", id_column="uid"),
        [Row("r1", "hello, world", label="1"), Row("r2", "padded", label="0")],
        [(at(path, 4), "missing_column")],
    )


def test_tsv_without_header_positional(tmp_path):
    path = _write(tmp_path / "p.tsv", "1\thola, mundo\n0\tadiós\n")
    read(
        DataConfig(format="tsv", path=path, header=False, text_column=1, label_column=0),
        [Row(at(path, 1), "hola, mundo", label="1"), Row(at(path, 2), "adiós", label="0")],
    )


def test_anki_pairs_keep_quotes_literally(tmp_path):
    attribution = "CC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #4986655 (cueyayotl)"
    path = _write(
        tmp_path / "spa.txt",
        f"Go.\tVe.\t{attribution}\n"
        f'"Hi," she said.\t"Hola", dijo ella.\t{attribution}\n'
        f'He said "no".\tÉl dijo "no".\t{attribution}\n'
        "It's 5 o'clock.\tSon las 5.\n"
        "Lonely source\n"
        "\n",
    )
    read(
        DataConfig(format="anki", path=path),
        [
            Row(at(path, 1), "Go.", target="Ve."),
            Row(at(path, 2), '"Hi," she said.', target='"Hola", dijo ella.'),
            Row(at(path, 3), 'He said "no".', target='Él dijo "no".'),
            Row(at(path, 4), "It's 5 o'clock.", target="Son las 5."),
        ],
        [(at(path, 5), "missing_column"), (at(path, 6), "empty_line")],
    )


# --- aligned files ------------------------------------------------------------------


def test_aligned_files(tmp_path):
    source = _write(tmp_path / "corpus.en", b"Hello.\r\nGood night.\r\n\r\nThanks.\r\n")
    target = _write(tmp_path / "corpus.es", "Hola.\nBuenas noches.\nVacío.\nGracias.\n")
    read(
        DataConfig(format="aligned", path=source, target_path=target),
        [
            Row(at(source, 1), "Hello.", target="Hola."),
            Row(at(source, 2), "Good night.", target="Buenas noches."),
            Row(at(source, 4), "Thanks.", target="Gracias."),
        ],
        [(at(source, 3), "empty_line")],
    )


def test_aligned_glob_matching_one_file_each(tmp_path):
    """A glob that passes the launch check (one file each) must also be read."""
    _write(tmp_path / "src" / "part-0.en", "One.\nTwo.\n")
    _write(tmp_path / "tgt" / "part-0.es", "Uno.\nDos.\n")
    read(
        DataConfig(format="aligned", path=str(tmp_path / "src" / "*.en"), target_path=str(tmp_path / "tgt" / "*.es")),
        [Row("part-0.en:0", "One.", target="Uno."), Row("part-0.en:5", "Two.", target="Dos.")],
    )


def test_aligned_files_of_different_lengths_reject_the_lines_without_a_partner(tmp_path):
    """Lengths are not checked at launch (that would read both files there): the pipeline rejects the rest."""
    source = _write(tmp_path / "a.en", "one\ntwo\nthree\n")
    target = _write(tmp_path / "a.es", "uno\ndos\n")
    longer_target = _write(tmp_path / "b.es", "uno\ndos\ntres\ncuatro\n")
    read_all([
        (DataConfig(format="aligned", path=source, target_path=target),
         [Row(at(source, 1), "one", target="uno"), Row(at(source, 2), "two", target="dos")],
         [(at(source, 3), "unaligned")]),
        (DataConfig(format="aligned", path=source, target_path=longer_target),
         [Row(at(source, 1), "one", target="uno"), Row(at(source, 2), "two", target="dos"),
          Row(at(source, 3), "three", target="tres")],
         [(at(longer_target, 4), "unaligned")]),
    ])


def test_aligned_missing_target_fails_at_construction(tmp_path):
    source = _write(tmp_path / "a.en", "one\n")
    with pytest.raises(FileNotFoundError, match="data.target_path"):
        ReadCorpus(DataConfig(format="aligned", path=source, target_path=str(tmp_path / "nope.es")))


def test_aligned_globs_of_several_files_fail_at_construction(tmp_path):
    _write(tmp_path / "a1.en", "one\n")
    _write(tmp_path / "a2.en", "two\n")
    target = _write(tmp_path / "a.es", "uno\n")
    with pytest.raises(ConfigError):
        ReadCorpus(DataConfig(format="aligned", path=str(tmp_path / "a*.en"), target_path=target))


# --- JSON Lines ---------------------------------------------------------------------


def test_jsonl(tmp_path):
    path = _write(
        tmp_path / "c.jsonl",
        '{"text": "hello", "label": 1, "uid": "a1"}\n'        # 1 row, id from uid
        '{"text": "bye", "label": 0, "uid": 7, "extra": [1]}\n'  # 2 row, numeric id -> "7"
        "{not json\n"                                          # 3 malformed_json
        '["text", "label"]\n'                                  # 4 malformed_json (not an object)
        '{"text": 5, "label": 1, "uid": "x"}\n'               # 5 not_text
        '{"text": null, "label": 1, "uid": "y"}\n'            # 6 missing_value
        '{"label": 1, "uid": "z"}\n'                          # 7 missing_column
        "\n"                                                   # 8 empty_line
        '"just a string"\n'                                    # 9 malformed_json
        '{"text": "sin label", "uid": "w"}\n'                 # 10 missing_column
        '{"text": "ünïcode ❤️", "label": 2, "uid": "u"}\n'     # 11 row
        '{"text": "half \\ud83d pair", "label": 2}\n',        # 12 undecodable (lone surrogate)
    )
    read(
        DataConfig(format="jsonl", path=path, label_column="label", id_column="uid"),
        [Row("a1", "hello", label=1), Row("7", "bye", label=0), Row("u", "ünïcode ❤️", label=2)],
        [
            (at(path, 3), "malformed_json"),
            (at(path, 4), "malformed_json"),
            (at(path, 5), "not_text"),
            (at(path, 6), "missing_value"),
            (at(path, 7), "missing_column"),
            (at(path, 8), "empty_line"),
            (at(path, 9), "malformed_json"),
            (at(path, 10), "missing_column"),
            (at(path, 12), "undecodable"),
        ],
    )


def test_jsonl_without_id_column_uses_line_ids(tmp_path):
    path = _write(tmp_path / "d.jsonl", '{"text": "a", "target": "b"}\n{"text": "c", "target": 3}\n')
    read(
        DataConfig(format="jsonl", path=path, target_column="target"),
        [Row(at(path, 1), "a", target="b")],
        [(at(path, 2), "not_text")],
    )


# --- Parquet ------------------------------------------------------------------------


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "pq"
    folder.mkdir()
    table = pa.table({"text": ["first", None, "third", "fourth", "fifth"], "label": [0, 1, 2, 3, 4]})
    # Several row groups: row numbers must run on across them.
    pq.write_table(table, folder / "a.parquet", row_group_size=2)
    pq.write_table(pa.table({"text": [7, 8], "label": [1, 0]}), folder / "b.parquet")
    read(
        DataConfig(format="parquet", path=str(folder / "*.parquet"), label_column="label"),
        [
            Row("a.parquet:1", "first", label=0),
            Row("a.parquet:3", "third", label=2),
            Row("a.parquet:4", "fourth", label=3),
            Row("a.parquet:5", "fifth", label=4),
        ],
        [("a.parquet:2", "missing_value"), ("b.parquet:1", "not_text"), ("b.parquet:2", "not_text")],
    )


def test_parquet_missing_column_and_id_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"body": ["x", "y"], "key": ["k1", "k2"]}), tmp_path / "c.parquet")
    path = str(tmp_path / "c.parquet")
    read_all([
        (DataConfig(format="parquet", path=path, text_column="body", id_column="key"), [Row("k1", "x"), Row("k2", "y")]),
        (DataConfig(format="parquet", path=path), [], [("c.parquet:1", "missing_column"), ("c.parquet:2", "missing_column")]),
    ])


# --- plain text and compression -----------------------------------------------------


def test_plain_text(tmp_path):
    path = _write(tmp_path / "names.txt", "Aachenosaurus\nAardonyx\n\n  Abelisaurus  \nAbrictosaurus")
    read(
        DataConfig(format="text", path=path),
        [
            Row(at(path, 1), "Aachenosaurus"),
            Row(at(path, 2), "Aardonyx"),
            Row(at(path, 4), "  Abelisaurus  "),
            Row(at(path, 5), "Abrictosaurus"),
        ],
        [(at(path, 3), "empty_line")],
    )


def test_gzip_text_is_read_transparently(tmp_path):
    path = _write(tmp_path / "names.txt.gz", "Aachenosaurus\r\nAardonyx\r\n")
    read(DataConfig(format="text", path=path), [Row(at(path, 1), "Aachenosaurus"), Row(at(path, 2), "Aardonyx")])


def test_gzip_csv_with_header_is_checked_and_read(tmp_path):
    path = _write(tmp_path / "e.csv.gz", "sentence,label\nfood is life,4\n")
    read(
        DataConfig(format="csv", path=path, text_column="sentence", label_column="label"),
        [Row(at(path, 2), "food is life", label="4")],
    )
    with pytest.raises(ConfigError, match="data.label_column"):
        ReadCorpus(DataConfig(format="csv", path=path, text_column="sentence", label_column="emoji"))


# --- globs, ids and accounting ------------------------------------------------------


def _two_folder_corpus(root: Path) -> None:
    _write(root / "x" / "part.txt", "alpha\nbeta\n")
    _write(root / "y" / "part.txt", "gamma\n\ndelta\n")


# Ids: each file named relative to the glob's folder, and the byte offset of the line.
_GLOB_ROWS = [
    Row("x/part.txt:0", "alpha"),
    Row("x/part.txt:6", "beta"),
    Row("y/part.txt:0", "gamma"),
    Row("y/part.txt:7", "delta"),
]


def test_glob_over_files_ids_are_relative_and_distinct(tmp_path):
    _two_folder_corpus(tmp_path / "corpus")
    read(DataConfig(format="text", path=str(tmp_path / "corpus" / "*" / "*.txt")), _GLOB_ROWS, [("y/part.txt:6", "empty_line")])


def test_ids_do_not_depend_on_where_the_corpus_lives(tmp_path, monkeypatch):
    _two_folder_corpus(tmp_path / "corpus")
    shutil.copytree(tmp_path / "corpus", tmp_path / "elsewhere" / "deeper" / "corpus")
    monkeypatch.chdir(tmp_path)
    read_all([
        (DataConfig(format="text", path=str(tmp_path / "elsewhere" / "deeper" / "corpus" / "*" / "*.txt")),
         _GLOB_ROWS, [("y/part.txt:6", "empty_line")]),
        # A relative glob names the files the same way.
        (DataConfig(format="text", path="corpus/*/*.txt"), _GLOB_ROWS, [("y/part.txt:6", "empty_line")]),
    ])


def test_glob_of_csv_files_accounts_for_every_line(tmp_path):
    folder = tmp_path / "shards"
    _write(folder / "a.csv", "sentence,label\nok one,1\n\"broken,2\nok two,0\n\n")
    _write(folder / "b.csv", "sentence,label\r\nok three,3\r\nlonely\r\nok four,4\r\n")
    non_header_lines = 4 + 3
    data = DataConfig(format="csv", path=str(folder / "*.csv"), text_column="sentence", label_column="label")

    def distinct_nonempty_ids(ids: list[str]) -> None:
        if len(ids) != len(set(ids)) or not all(ids):
            raise BeamAssertException(f"ids not distinct/non-empty: {ids}")

    with _pipeline() as p:
        out = p | ReadCorpus(data)
        row_ids = out["batches"] | "RowIds" >> beam.FlatMap(lambda batch: [row.id for row in rows_of(batch)])
        reject_ids = out["rejected"] | "RejectIds" >> beam.Map(lambda record: record["id"])
        all_ids = (row_ids, reject_ids) | "AllIds" >> beam.Flatten()
        assert_that(all_ids | "Count" >> beam.combiners.Count.Globally(), equal_to([non_header_lines]), label="count")
        assert_that(all_ids, distinct_nonempty_ids, label="distinct")
        assert_that(
            row_ids,
            equal_to([at(folder / "a.csv", 2), at(folder / "a.csv", 4), at(folder / "b.csv", 2),
                      at(folder / "b.csv", 4)]),
            label="row_ids",
        )
        assert_that(
            out["rejected"] | "Key" >> beam.Map(_id_and_code),
            equal_to([(at(folder / "a.csv", 3), "malformed_csv"), (at(folder / "a.csv", 5), "empty_line"),
                      (at(folder / "b.csv", 3), "missing_column")]),
            label="rejects",
        )


# --- failures at construction -------------------------------------------------------


def test_missing_path_fails_at_construction(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.path"):
        ReadCorpus(DataConfig(format="text", path=str(tmp_path / "missing.txt")))
    with pytest.raises(FileNotFoundError, match="data.path"):
        ReadCorpus(DataConfig(format="text", path=str(tmp_path / "no_folder" / "*.txt")))
    with pytest.raises(FileNotFoundError, match="data.path"):
        ReadCorpus(DataConfig(format="text", path=str(tmp_path / "*.nothing")))


def test_empty_file_fails_at_construction(tmp_path):
    path = _write(tmp_path / "empty.txt", b"")
    with pytest.raises(ValueError, match="empty"):
        ReadCorpus(DataConfig(format="text", path=path))


def test_csv_header_without_the_configured_column(tmp_path):
    path = _write(tmp_path / "e.csv", "sentence,emoji\nhi,1\n")
    with pytest.raises(ConfigError, match=r"data\.label_column") as info:
        ReadCorpus(DataConfig(format="csv", path=path, text_column="sentence", label_column="label"))
    assert "'label'" in str(info.value) and "e.csv" in str(info.value)
    with pytest.raises(ConfigError, match=r"data\.text_column"):
        ReadCorpus(DataConfig(format="csv", path=path, text_column="text", label_column="emoji"))
    tsv = _write(tmp_path / "e.tsv", "sentence\temoji\nhi\t1\n")
    with pytest.raises(ConfigError, match=r"data\.id_column"):
        ReadCorpus(DataConfig(format="tsv", path=tsv, text_column="sentence", label_column="emoji", id_column="uid"))


def test_headerless_csv_with_named_columns_fails_at_construction(tmp_path):
    """Without a header only positions can name columns: fail at launch, not in a worker."""
    path = _write(tmp_path / "n.csv", "hello,1\n")
    with pytest.raises(ConfigError, match=r"data\.text_column"):
        ReadCorpus(DataConfig(format="csv", path=path, header=False, label_column=1))
    with pytest.raises(ConfigError, match=r"data\.label_column"):
        ReadCorpus(DataConfig(format="csv", path=path, header=False, text_column=0, label_column="label"))


def test_generated_format_is_not_read(tmp_path):
    with pytest.raises(ValueError, match="GenerateRows"):
        ReadCorpus(DataConfig(format="generated"))


# --- rows of a task: ReadRows, ReadValidBatches, TrainingNames (transforms/rows.py) ----------


def _task_config(task: dict, data: dict, **preprocess):
    from seqbeam.configs.schema import config_from_dict

    return config_from_dict({"task": task, "data": data, "preprocess": {"batch_size": 2, **preprocess}})


def _rows_of(batches, label: str):
    """The Rows of a PCollection of RowBatches (or lists of Rows), one element each."""
    return batches | label >> beam.FlatMap(
        lambda batch: rows_of(batch) if not isinstance(batch, RowBatch) else [batch.row(i) for i in range(len(batch))])


def test_read_valid_batches_validates_gives_splits_and_counts_what_was_read(tmp_path):
    from seqbeam.transforms.rows import ReadValidBatches
    from seqbeam.transforms.sinks import SumCounts
    from seqbeam.transforms.validate import assign_split

    emoji = _write(tmp_path / "emoji.csv",
                   "sentence,label\n"
                   "I love you,0\n"      # 2: valid
                   "what a day,7\n"      # 3: label out of range
                   ",3\n"                # 4: empty text
                   "no label column\n"   # 5: missing column (the reader)
                   + "z" * 300 + ",4\n"  # 6: over preprocess.max_chars
                   "we eat food, 4 \n")  # 7: valid, the label stripped
    pairs = _write(tmp_path / "pairs.tsv", "Go.\tVe.\tCC-BY\nBye.\t \tCC-BY\n")
    classifier = _task_config({"name": "emoji", "kind": "classifier", "classes": ["a", "b", "c", "d", "e"]},
                              {"format": "csv", "path": emoji, "text_column": "sentence", "label_column": "label"},
                              max_chars=200)
    seq2seq = _task_config({"name": "translate", "kind": "seq2seq"}, {"format": "anki", "path": pairs})
    splits = classifier.preprocess.splits

    def row(path, line, text, label=None, target=None):
        return Row(at(path, line), text, target, label, assign_split(at(path, line), splits))

    with _pipeline() as p:
        for name, config, rows, rejects, read in [
            ("Emoji", classifier, [row(emoji, 2, "I love you", label=0), row(emoji, 7, "we eat food", label=4)],
             [(at(emoji, 3), "validate", "bad_label"), (at(emoji, 4), "validate", "empty_text"),
              (at(emoji, 5), "read", "missing_column"), (at(emoji, 6), "validate", "too_many_chars")], 5),
            ("Pairs", seq2seq, [row(pairs, 1, "Go.", target="Ve.")], [(at(pairs, 2), "validate", "empty_target")], 2),
        ]:
            out = p | f"Read{name}" >> ReadValidBatches(config)
            assert set(out) == {"batches", "rejected", "stats"}
            assert_that(_rows_of(out["batches"], f"Rows{name}"), equal_to(rows),
                        label=f"rows{name}")
            assert_that(out["rejected"] | f"Codes{name}" >> beam.Map(lambda r: (r["id"], r["stage"], r["code"])),
                        equal_to(rejects), label=f"rejected{name}")
            # Rows that came through reading, whatever validation made of them.
            assert_that(out["stats"] | f"Sum{name}" >> beam.CombineGlobally(SumCounts()), equal_to([{"read": read}]),
                        label=f"stats{name}")
        # Validation's reasons name the limit and the key that sets it; the raw input is kept.
        validated = (p | "ReadAgain" >> ReadValidBatches(classifier))["rejected"] | beam.Filter(
            lambda r: r["stage"] == "validate")
        assert_that(validated | beam.Map(lambda r: (r["reason"], r["raw"])), equal_to([
            ("bad_label: label 7 outside 0..4", "what a day\t7"),
            ("empty_text", "\t3"),
            ("too_many_chars: 300 characters > preprocess.max_chars 200", "z" * 300 + "\t4"),
        ]), label="reasons")


def test_read_rows_generates_a_generated_corpus_in_batches_with_no_read_rejections():
    from seqbeam.transforms.rows import ReadRows, ReadValidBatches
    from seqbeam.transforms.synthetic import generate_shard

    config = _task_config({"name": "reber", "kind": "classifier", "classes": ["ungrammatical", "grammatical"]},
                          {"format": "generated", "generator": {"name": "reber", "num_rows": 25, "seed": 3,
                                                                "rows_per_shard": 10}}, batch_size=4)
    expected = [row for shard in range(3) for row in generate_shard(config.data.generator, shard)]
    assert len(expected) == 25 and len({row.id for row in expected}) == 25
    with _pipeline() as p:
        read = p | "Read" >> ReadRows(config)
        assert set(read) == {"batches", "rejected"}
        assert_that(_rows_of(read["batches"], "Rows"), equal_to(expected), label="rows")
        assert_that(read["batches"] | "Sizes" >> beam.Map(lambda b: 0 < len(b) <= 4) | beam.Distinct(),
                    equal_to([True]), label="batch sizes")
        assert_that(read["rejected"], equal_to([]), label="no rejections")
        # Generated labels are 0/1 and texts never empty: every row is valid and gets its split.
        valid = p | "Validate" >> ReadValidBatches(config)
        assert_that(_rows_of(valid["batches"], "Valid") | "Ids" >> beam.Map(lambda r: r.id),
                    equal_to([row.id for row in expected]), label="valid")
        assert_that(valid["rejected"], equal_to([]), label="none rejected")


def test_training_names_are_the_normalized_train_split_only(tmp_path):
    from seqbeam.transforms.postprocess import name_key
    from seqbeam.transforms.rows import TrainingNames
    from seqbeam.transforms.validate import assign_split

    names = ["Aurosaurus", "KIRAPTOR", "tovenator", "Ｂａｒｏｓａｕｒｕｓ", "melusaurus", "gonidon", "  lutosaurus ",
             "Ratomimus", "kiraptor", "zygodon", "pelusaurus", "niraptor"]
    path = _write(tmp_path / "names.txt", "\n".join(names) + "\n\n")  # the empty line is rejected, not a name
    config = _task_config({"name": "names", "kind": "lm"}, {"format": "text", "path": path}, batch_size=3)
    train = {name_key(name) for line, name in enumerate(names, start=1)
             if assign_split(at(path, line), config.preprocess.splits) == "train"}
    assert 0 < len(train) < len({name_key(n) for n in names})  # some names are in the other splits
    assert "barosaurus" in {name_key(n) for n in names}  # NFKC and case folding apply
    with _pipeline() as p:
        assert_that(p | TrainingNames(config), equal_to([frozenset(train)]))


@pytest.mark.parametrize("block", [5, 64, 1 << 20])
def test_line_blocks_hold_the_lines_iter_lines_gives_in_batches_whatever_the_reads(tmp_path, monkeypatch, block):
    """LineSource's blocks (lines found with numpy, joined across reads of ``block`` bytes) hold
    exactly the lines and offsets of the line-by-line reader, batch_size to a block, over any split."""
    import io
    import random

    from seqbeam.transforms import sources

    rng = random.Random(block)
    pieces = [b"a", b"bc", b"\xef\xbb\xbf", b"\xff", b",", b'"', b"\r", b"\n", b"\r\n", b"xyz" * 30]
    for trial in range(20):
        data = (b"\xef\xbb\xbf" if trial % 3 == 0 else b"") + b"".join(rng.choice(pieces) for _ in range(300))
        path = tmp_path / f"f{trial}.txt"
        path.write_bytes(data)
        want = [(offset, sources.decode_line(line)) for offset, line in sources.iter_lines(io.BytesIO(data))]
        monkeypatch.setattr(sources, "_BLOCK", block)
        source = sources.LineSource(str(path), str(tmp_path), batch_size=7)
        got, sizes = [], []
        for bundle in source.split(desired_bundle_size=max(1, len(data) // rng.randint(1, 9))):
            tracker = bundle.source.get_range_tracker(bundle.start_position, bundle.stop_position)
            blocks = list(bundle.source.read(tracker))
            sizes += [len(b.offsets) for b in blocks[:-1]]
            for b in blocks:
                batch = b.decoded()
                got += list(zip(batch.offsets, batch.lines))
        assert got == want
        assert all(size == 7 for size in sizes)
