"""Progress lines in the job log."""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from seqbeam.transforms.progress import LogProgress


def test_progress_lines_count_the_rows_and_pass_batches_through(caplog):
    batches = [list(range(i, i + 7)) for i in range(0, 70, 7)]  # 10 batches of 7 rows
    with caplog.at_level(logging.INFO, logger="seqbeam.transforms.progress"):
        with TestPipeline() as p:
            out = p | beam.Create([batches]) | beam.FlatMap(lambda b: b) | beam.ParDo(LogProgress("test", every=20))
            assert_that(out, equal_to(batches))
    counts = [int(r.getMessage().split(": ")[1].split()[0]) for r in caplog.records if "progress test" in r.getMessage()]
    assert counts == [21, 42, 63]  # a line each time another 20 rows have gone by
