"""The accounting transforms of transforms/sinks.py and the rejected-rows Parquet sink, in a local pipeline.

(The TFRecord sink's framing is tested in tests/test_sinks_tfrecord.py.)
"""

from __future__ import annotations

import glob
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from seqbeam.pipelines.options import pipeline_options
from seqbeam.transforms.records import rejection
from seqbeam.transforms.sinks import (
    REJECTED_SCHEMA,
    CountRejections,
    FirstErrors,
    SumCounts,
    TooManyFailures,
    WriteRejected,
    check_failure_rate,
    failure_report,
    rejections_by_stage,
)

from conftest import read_rejected


def _pipeline() -> beam.Pipeline:
    return TestPipeline(options=pipeline_options([]))


def test_sum_counts_adds_the_count_dicts_of_every_batch():
    with _pipeline() as p:
        stats = p | "Stats" >> beam.Create([{"read": 3, "train": 2}, {"read": 1, "valid": 1}, {}, {"read": 2}])
        assert_that(stats | "Sum" >> beam.CombineGlobally(SumCounts()),
                    equal_to([{"read": 6, "train": 2, "valid": 1}]), label="sum")
        nothing = p | "Nothing" >> beam.Create([])
        assert_that(nothing | "SumNothing" >> beam.CombineGlobally(SumCounts()), equal_to([{}]), label="empty")


REJECTED_RECORDS = [
    rejection("f:40", "", "read", "empty_line"),
    rejection("f:0", b"\xff bad", "read", "undecodable"),
    rejection("f:9", "x\t7", "validate", "bad_label", "label 7 outside 0..4"),
    rejection("f:12", "food " * 100, "encode", "processing_error", "ValueError: " + "y" * 400),
    rejection("f:3", "so sad", "infer", "inference_error", "the model is broken"),
    rejection("f:27", "great fun", "encode", "processing_error", "ConnectionError: lost"),
    rejection("f:5", "we eat", "read", "empty_line"),
]


def test_count_rejections_counts_by_stage_and_code():
    with _pipeline() as p:
        counts = p | "Records" >> beam.Create(REJECTED_RECORDS) | "Count" >> CountRejections()
        assert_that(counts, equal_to([{"read/empty_line": 2, "read/undecodable": 1, "validate/bad_label": 1,
                                       "encode/processing_error": 2, "infer/inference_error": 1}]), label="counts")
        none = p | "None" >> beam.Create([]) | "CountNone" >> CountRejections()
        assert_that(none, equal_to([{}]), label="empty")
    assert rejections_by_stage({"read/empty_line": 2, "read/undecodable": 1, "encode/processing_error": 2}) == {
        "read": 3, "encode": 2}


def test_first_errors_are_the_failures_with_the_smallest_ids_with_short_reasons():
    with _pipeline() as p:
        records = p | "Records" >> beam.Create(REJECTED_RECORDS)
        first = records | "FirstTwo" >> FirstErrors(count=2)
        # Bad input (empty_line, bad_label...) is no failure; ids compare as strings: "f:12" < "f:27" < "f:3".
        assert_that(first, equal_to([[
            ("f:12", "encode", "processing_error", ("processing_error: ValueError: " + "y" * 400)[:300]),
            ("f:27", "encode", "processing_error", "processing_error: ConnectionError: lost"),
        ]]), label="first two")
        assert_that(records | "FirstFive" >> FirstErrors() | beam.Map(lambda errors: [e[0] for e in errors]),
                    equal_to([["f:12", "f:27", "f:3"]]), label="all three")
        bad_input_only = p | "BadInput" >> beam.Create(REJECTED_RECORDS[:3]) | "FirstNone" >> FirstErrors()
        assert_that(bad_input_only, equal_to([[]]), label="no failure")


def test_failure_report_and_check_failure_rate():
    by_code = {"read/empty_line": 5, "encode/processing_error": 2, "infer/inference_error": 1}
    first = [("f:12", "encode", "processing_error", "processing_error: boom")]
    report = failure_report(400, by_code, first, max_rate=0.01)
    assert report == {"rows": 3, "rate": 0.0075, "max_rate": 0.01,
                      "first": [{"id": "f:12", "stage": "encode", "code": "processing_error",
                                 "reason": "processing_error: boom"}]}
    check_failure_rate(report, 400, "preprocess.max_failure_rate", "out/rejected/")  # under the threshold
    assert failure_report(0, {}, [], 0.01)["rate"] == 0.0
    over = failure_report(200, by_code, first, max_rate=0.01)
    with pytest.raises(TooManyFailures, match=r"^3 of 200 rows \(1.5%\) failed, over infer.max_failure_rate 0.01; "
                                              r"first errors: f:12 \(encode\) processing_error: boom "
                                              r"\(every rejected row, with its reason: out/rejected/\)$"):
        check_failure_rate(over, 200, "infer.max_failure_rate", "out/rejected/")


def test_write_rejected_round_trips_every_record_through_sharded_parquet(tmp_path):
    # Over two tables of 256 rows: both shards get some; the awkward values survive as text.
    records = REJECTED_RECORDS + [rejection(f"g:{i:04d}", f"row {i}", "validate", "too_many_chars",
                                            f"{i} characters > infer.max_chars 2") for i in range(600)]
    records.append(rejection("lone\ud800", "raw\udcff", "read", "undecodable"))
    folder = tmp_path / "rejected"
    with _pipeline() as p:
        paths = p | beam.Create(records) | WriteRejected(str(folder), num_shards=2)
        assert_that(paths | beam.Map(os.path.basename), equal_to(
            ["rejected-00000-of-00002.parquet", "rejected-00001-of-00002.parquet"]))
    files = sorted(glob.glob(str(folder / "*")))
    assert [os.path.basename(path) for path in files] == ["rejected-00000-of-00002.parquet",
                                                          "rejected-00001-of-00002.parquet"]
    assert all(pq.read_schema(path) == REJECTED_SCHEMA for path in files)
    assert all(pq.read_metadata(path).num_rows > 0 for path in files)
    assert read_rejected(str(folder)) == sorted(records, key=lambda r: r["id"])
    assert {r["id"]: r["raw"] for r in read_rejected(str(folder))}["lone\\ud800"] == "raw\\xff"
