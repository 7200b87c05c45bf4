"""Progress lines in the job log: a long batch job shows it is moving, and how fast.

Beam's counters are only read when a job ends (on the local runner) or in a runner's
console; :class:`LogProgress` also writes a log line each time a worker has seen another
``every`` rows:

    progress preprocess: 200,000 rows by worker 4242/139811 (31,250 rows/s)

The ``pid/instance`` tag tells the lines of parallel workers apart: the job's progress is
the sum of each worker's last count (what ``benchmarks/load.py`` does). The environment
variable ``SEQBEAM_PROGRESS_EVERY`` (rows, read by each worker) changes the interval.
"""

from __future__ import annotations

import logging
import os
import time

import apache_beam as beam

PROGRESS_EVERY = 100_000
_LOG = logging.getLogger(__name__)


class LogProgress(beam.DoFn):
    """Passes lists (batches of rows) through untouched, logging the rows seen every ``every`` rows.

    ``every`` 0: ``$SEQBEAM_PROGRESS_EVERY`` when set in the worker, else PROGRESS_EVERY.
    """

    def __init__(self, job: str, every: int = 0):
        self._job = job
        self._every_given = every

    def setup(self):
        self._every = self._every_given or int(os.environ.get("SEQBEAM_PROGRESS_EVERY", PROGRESS_EVERY))
        self._seen = 0
        self._next = self._every
        self._started = time.monotonic()
        self._tag = f"{os.getpid()}/{id(self)}"

    def process(self, batch):
        self._seen += len(batch)
        if self._seen >= self._next:
            rate = self._seen / max(time.monotonic() - self._started, 1e-9)
            _LOG.info("progress %s: %d rows by worker %s (%.0f rows/s)", self._job, self._seen, self._tag, rate)
            self._next = (self._seen // self._every + 1) * self._every
        yield batch
