"""Sinks of the jobs: TFRecord shards, rejected rows, vocabularies, metadata, and the accounting.

The accounting is data: per-batch count dicts summed with :class:`SumCounts`, rejected
records counted by ``stage/code`` (:class:`CountRejections`) and the first failures kept
(:class:`FirstErrors`), all bounded by a fixed set of keys or a fixed count. Each job
checks them in the step that writes its summary, its last output (:func:`build_metadata`,
:func:`check_failure_rate`), so a retried bundle or a template launch still accounts exactly.
"""

from __future__ import annotations

import collections
import datetime
import functools
import logging
import struct
from typing import Any, Iterable, Mapping

import apache_beam as beam
import google_crc32c
import pyarrow as pa
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes

from seqbeam.configs.schema import Config
from seqbeam.storage import join_path
from seqbeam.transforms.records import SPLITS
from seqbeam.transforms.retry import PROCESSING_ERROR
from seqbeam.text.vocabulary import Vocabulary

_LOG = logging.getLogger(__name__)

# A model call that raised: every row of its batch is rejected with this code.
INFERENCE_ERROR = "inference_error"
# Rejection codes that are failures of the job (a step or the model raised), not bad input.
FAILURE_CODES = frozenset({PROCESSING_ERROR, INFERENCE_ERROR})
# How many failed rows a failing job names, and how much of each reason it keeps.
FIRST_ERRORS = 5
_REASON_CHARS = 300


class BatchedTFRecordSink(filebasedsink.FileBasedSink):
    """Beam's TFRecord file sink, fed lists of records instead of one record per element.

    Per-element overhead dominates a Python pipeline at a million rows; writing a batch per
    element keeps the sink's temp-file, sharding and finalization logic without it.
    """

    _LENGTH = struct.Struct("<Q")
    _CRC = struct.Struct("<I")

    def __init__(self, file_path_prefix: str, file_name_suffix: str, num_shards: int):
        super().__init__(
            file_path_prefix=file_path_prefix,
            coder=None,
            file_name_suffix=file_name_suffix,
            num_shards=num_shards,
            mime_type="application/octet-stream",
            compression_type=CompressionTypes.GZIP,
        )

    def write_record(self, file_handle, records: list[bytes]) -> None:
        # One write per batch: every write to a gzip file is a separate compress call.
        file_handle.write(self.frame(records))

    @classmethod
    def frame(cls, records: Iterable[bytes]) -> bytes:
        """``records`` framed as consecutive TFRecords, the bytes of a (plain) ``.tfrecord`` file.

        Each record is its length (uint64, little-endian), the masked CRC-32C of those 8
        bytes (uint32, little-endian), the data, and the masked CRC-32C of the data.
        """
        pack_crc, crc, header = cls._CRC.pack, cls._masked_crc32c, cls._header
        parts = []
        for record in records:
            parts += (header(len(record)), record, pack_crc(crc(record)))
        return b"".join(parts)

    @classmethod
    @functools.lru_cache(maxsize=4096)
    def _header(cls, length: int) -> bytes:
        """A record's length and its masked CRC (records of a job have few distinct lengths)."""
        packed = cls._LENGTH.pack(length)
        return packed + cls._CRC.pack(cls._masked_crc32c(packed))

    @staticmethod
    def _masked_crc32c(data: bytes) -> int:
        """TFRecord's masked CRC-32C of ``data``: the CRC rotated right by 15 bits plus 0xa282ead8, mod 2**32."""
        value = google_crc32c.value(data)
        return (((value >> 15) | (value << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class WriteSplits(beam.PTransform):
    """``(split, [serialized Example])`` -> ``<data_dir>/<split>-SSSSS-of-NNNNN.tfrecord.gz``.

    ``num_shards`` 0 writes one file per bundle, streaming; N > 0 writes exactly N files
    per split, which takes a grouping step. Returns a dict split -> PCollection of the
    shard paths written.
    """

    def __init__(self, data_dir: str, num_shards: int):
        super().__init__()
        self._data_dir = data_dir
        self._num_shards = num_shards

    def expand(self, examples):
        parts = examples | "BySplit" >> beam.Partition(lambda kv, _: SPLITS.index(kv[0]), len(SPLITS))
        written = {}
        for split, part in zip(SPLITS, parts):
            written[split] = (
                part
                | f"{split.capitalize()}Records" >> beam.Values()
                | f"Write{split.capitalize()}" >> beam.io.Write(
                    BatchedTFRecordSink(join_path(self._data_dir, split), ".tfrecord.gz", self._num_shards)
                )
            )
        return written


# The one format of rejected rows, for every job: one record per row that produced no
# output (DESIGN.md), as written by :func:`seqbeam.transforms.records.rejection`.
REJECTED_SCHEMA = pa.schema([pa.field(name, pa.string(), nullable=False)
                             for name in ("id", "raw", "stage", "code", "reason")])
# Rows go to the shards a table (row group) at a time: a table of every 256 rows (Beam
# flushes a table once its record batches reach the byte size, 1 here) spreads a bundle's
# rejections over the shards; Beam's 64 MiB tables would put them all in one file.
_REJECTED_TABLE_ROWS = 256


class WriteRejected(beam.PTransform):
    """Rejected records -> ``<rejected_dir>/rejected-*.parquet``; returns the paths written.

    Every job writes its rejected rows with this transform: the columns of
    :data:`REJECTED_SCHEMA` (the raw input kept as text, never interpreted). ``num_shards``
    is the job's own shard setting (0: one file per bundle), so a job that rejects many
    rows spreads them over as many writers as its main output.
    """

    def __init__(self, rejected_dir: str, num_shards: int):
        super().__init__()
        self._prefix = join_path(rejected_dir, "rejected")
        self._num_shards = num_shards

    def expand(self, rejected):
        return rejected | "WriteParquet" >> beam.io.WriteToParquet(
            self._prefix, schema=REJECTED_SCHEMA, codec="snappy", file_name_suffix=".parquet",
            num_shards=self._num_shards, row_group_buffer_size=1,
            record_batch_size=_REJECTED_TABLE_ROWS)


class SumCounts(beam.CombineFn):
    """Sums dicts of counts (per-batch statistics)."""

    def create_accumulator(self) -> collections.Counter:
        return collections.Counter()

    def add_input(self, accumulator, counts: Mapping[str, int]):
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = collections.Counter()
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator) -> dict[str, int]:
        return dict(accumulator)


class _CountCodes(SumCounts):
    """Counts rejected records by ``"<stage>/<code>"``: as many keys as there are stages and codes."""

    def add_input(self, accumulator, record: Mapping[str, Any]):
        accumulator[f"{record['stage']}/{record['code']}"] += 1
        return accumulator


class CountRejections(beam.PTransform):
    """Rejected records -> a singleton dict ``"<stage>/<code>" -> rows`` (empty when none).

    Combined globally, but bounded: the keys are the fixed set of stages and codes, and
    the runner sums each bundle before the merge (combiner lifting).
    """

    def expand(self, rejected):
        return rejected | "CountCodes" >> beam.CombineGlobally(_CountCodes())


def rejections_by_stage(rejected_by_code: Mapping[str, int]) -> dict[str, int]:
    """Rejected rows per stage, from the ``"<stage>/<code>" -> rows`` of :class:`CountRejections`."""
    by_stage = collections.Counter()
    for key, count in rejected_by_code.items():
        by_stage[key.split("/")[0]] += count
    return dict(by_stage)


def error_brief(record: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """``(id, stage, code, reason)`` of a rejected record, the reason cut to a few hundred characters."""
    return record["id"], record["stage"], record["code"], record["reason"][:_REASON_CHARS]


class FirstErrors(beam.PTransform):
    """Rejected records -> a singleton list of the ``count`` failures with the smallest ids.

    Failures are the records whose code is in :data:`FAILURE_CODES`; each is kept as
    :func:`error_brief`. A bounded combine (a heap of ``count``): the job can name its
    first errors however many rows failed.
    """

    def __init__(self, count: int = FIRST_ERRORS):
        super().__init__()
        self._count = count

    def expand(self, rejected):
        return (
            rejected
            | "Failures" >> beam.Filter(lambda record: record["code"] in FAILURE_CODES)
            | "Brief" >> beam.Map(error_brief)
            # TopCombineFn, not Top.Smallest: the latter's per-bundle path fails on Beam's
            # BundleBasedDirectRunner (its GroupByKey gets elements after completing).
            | "Smallest" >> beam.CombineGlobally(beam.combiners.TopCombineFn(self._count, reverse=True))
        )


class TooManyFailures(RuntimeError):
    """More rows failed (a step or the model raised) than the job's ``max_failure_rate`` allows."""


def failure_report(rows_in: int, rejected_by_code: Mapping[str, int], first_errors: Iterable[tuple],
                   max_rate: float) -> dict:
    """How many of ``rows_in`` rows failed, their share, the allowed share and the first errors."""
    failed = sum(count for key, count in rejected_by_code.items() if key.rsplit("/", 1)[-1] in FAILURE_CODES)
    return {
        "rows": failed,
        "rate": failed / rows_in if rows_in else 0.0,
        "max_rate": max_rate,
        "first": [dict(zip(("id", "stage", "code", "reason"), error)) for error in first_errors],
    }


def check_failure_rate(failures: Mapping[str, Any], rows_in: int, key: str, rejected_dir: str) -> None:
    """Raises TooManyFailures naming the first errors when ``failures`` (a :func:`failure_report`)
    is over its allowed share; ``key`` is the config key of that share."""
    if failures["rate"] <= failures["max_rate"]:
        return
    first = "; ".join(f"{e['id']} ({e['stage']}) {e['reason']}" for e in failures["first"])
    raise TooManyFailures(
        f"{failures['rows']} of {rows_in} rows ({failures['rate']:.1%}) failed, over {key} "
        f"{failures['max_rate']:g}; first errors: {first} (every rejected row, with its reason: {rejected_dir})"
    )


def write_vocabulary(vocabulary: Vocabulary, path: str) -> str:
    """Writes one vocabulary file and returns its path."""
    vocabulary.save(path)
    return path


def vocabulary_facts(vocabulary: Vocabulary) -> dict:
    """What metadata.json records of a vocabulary: its size and fingerprint (a small side input, unlike its tokens)."""
    return {"size": len(vocabulary), "fingerprint": vocabulary.fingerprint}


def build_metadata(
    config: Config,
    stats: Mapping[str, int],
    rejected_by_code: Mapping[str, int],
    vocabularies: Mapping[str, Mapping],
    shards: Mapping[str, Iterable[str]],
    first_errors: Iterable[tuple] = (),
    rejected_dir: str = "rejected/",
) -> dict:
    """metadata.json: what training needs to know of the shards, and where every row went.

    ``vocabularies``: the :func:`vocabulary_facts` of each vocabulary, by name.

    Raises RuntimeError if the row accounting does not add up, which would mean rows were
    lost, and TooManyFailures when more rows failed (``processing_error``) than
    ``preprocess.max_failure_rate`` allows, naming ``first_errors`` (:class:`FirstErrors`):
    the job must not end green then, and metadata.json, the mark of a good run, is not written.
    """
    pre = config.preprocess
    written = {split: stats.get(split, 0) for split in SPLITS}
    rejected_by_stage = rejections_by_stage(rejected_by_code)
    rows_in = stats.get("read", 0) + rejected_by_stage.get("read", 0)
    rows_rejected = sum(rejected_by_stage.values())
    if rows_in != sum(written.values()) + rows_rejected:
        raise RuntimeError(
            f"row accounting failed: {rows_in} rows in, {sum(written.values())} written, {rows_rejected} rejected"
        )
    failures = failure_report(rows_in, rejected_by_code, first_errors, pre.max_failure_rate)
    check_failure_rate(failures, rows_in, "preprocess.max_failure_rate", rejected_dir)
    if config.task.kind == "seq2seq":
        max_lengths = {"source": pre.max_length, "target": pre.max_target_length}
    else:
        max_lengths = {"tokens": pre.max_length}
    return {
        "task": config.task.name,
        "kind": config.task.kind,
        "config_hash": config.stage_hash("preprocess"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "classes": list(config.task.classes),
        "tokenizer": config.to_dict()["preprocess"]["tokenizer"],
        "vocab_sizes": {name: v["size"] for name, v in vocabularies.items()},
        "vocab_files": {name: f"vocab/{name}.txt" for name in vocabularies},
        "vocab_fingerprints": {name: v["fingerprint"] for name, v in vocabularies.items()},
        "max_lengths": max_lengths,
        "rows": {"in": rows_in, **written, "rejected": rows_rejected},
        "truncated": stats.get("truncated", 0),
        "rejected": {"by_stage": dict(rejected_by_stage), "by_reason": dict(sorted(rejected_by_code.items()))},
        "failures": failures,
        "shards": {split: sorted(_basename(p) for p in paths) for split, paths in shards.items()},
    }


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]
