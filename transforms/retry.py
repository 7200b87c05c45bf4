"""Batch steps that survive a failing row: retried row by row, then rejected with the error.

The jobs process rows in batches (one TensorFlow call per batch), so one row that makes a
step raise (a tokenizer edge case, a bug, a flaky dependency) would fail its whole batch,
and on most runners the job. :class:`RetryRowByRow` wraps a batch DoFn: a batch that
raises is cut into one-row batches that go through the DoFn again (a transient fault
passes the second time; a poison row is isolated), and a row that still fails on its own
becomes a rejected record with the error, stage ``stage`` and code ``processing_error``.
Nothing of a batch that raised is emitted, so no row is written or counted twice (the
wrapped DoFn must count rows only once its outputs are complete).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import apache_beam as beam

from seqbeam.transforms.records import REJECTED, rejection

PROCESSING_ERROR = "processing_error"


def error_message(error_type: Any, error_repr: str, traceback_lines: Sequence[str] = ()) -> str:
    """``Type: message`` of a Beam dead letter ``(type, repr, traceback lines)``.

    The message is taken from the traceback: the repr of a TensorFlow error omits it.
    """
    name = getattr(error_type, "__name__", str(error_type))
    lines = "".join(traceback_lines).splitlines()
    starts = [i for i, line in enumerate(lines) if line.split(":", 1)[0].endswith(name)]
    if not starts:
        return f"{name}: {error_repr}"
    message = " ".join(line.strip() for line in lines[starts[-1]:] if line.strip()).partition(":")[2]
    return f"{name}:{message}"


class RetryRowByRow(beam.DoFn):
    """Wraps a batch DoFn so that an exception loses no row and stops nothing.

    ``split(batch)`` cuts a batch into one-row batches of the same type; ``rows(batch)``
    gives its rows' ``(id, raw input)`` for the rejected records, which go to the
    ``rejected`` tagged output (``records.REJECTED``). A wrapper DoFn rather than a
    dead-letter branch of the graph: the retried outputs need no Flatten, which on the local
    runner would hold the whole output in memory before writing it. Counters (namespace
    ``retry``): ``batches_failed``, ``rows_failed``.
    """

    def __init__(self, fn: beam.DoFn, *, stage: str, split: Callable[[Any], Iterable[Any]],
                 rows: Callable[[Any], Iterable[tuple[str, Any]]]):
        self._fn = fn
        self._stage = stage
        self._split = split
        self._rows = rows
        self._batches_failed = beam.metrics.Metrics.counter("retry", "batches_failed")
        self._rows_failed = beam.metrics.Metrics.counter("retry", "rows_failed")

    def setup(self):
        self._fn.setup()

    def start_bundle(self):
        self._fn.start_bundle()

    def process(self, batch, *args, **kwargs):
        try:
            # Whole or nothing: outputs of a batch that fails half-way are dropped, then redone.
            return list(self._fn.process(batch, *args, **kwargs) or ())
        except Exception:  # noqa: BLE001 - any failure of the wrapped step is retried row by row
            self._batches_failed.inc()
        outputs = []
        for single in self._split(batch):
            try:
                outputs.extend(self._fn.process(single, *args, **kwargs) or ())
            except Exception as error:  # noqa: BLE001 - the row is rejected with the error instead
                detail = f"{type(error).__name__}: {error}"[:500]
                records = [rejection(row_id, raw, self._stage, PROCESSING_ERROR, detail)
                           for row_id, raw in self._rows(single)]
                self._rows_failed.inc(len(records))
                outputs.extend(beam.pvalue.TaggedOutput(REJECTED, record) for record in records)
        return outputs

    def finish_bundle(self):
        return self._fn.finish_bundle()

    def teardown(self):
        self._fn.teardown()


def single_rows(batch: list) -> list[list]:
    """One-row lists of a list batch."""
    return [[row] for row in batch]
