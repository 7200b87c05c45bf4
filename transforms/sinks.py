"""Sinks of the preprocessing job: TFRecord shards, rejected rows, vocabularies, metadata."""

from __future__ import annotations

import collections
import datetime
import io
import json
import logging
from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil

from seqbeam.pipelines.config import Config, join_path
from seqbeam.transforms.records import SPLITS
from seqbeam.transforms.vocabulary import Vocabulary

_LOG = logging.getLogger(__name__)


class BatchedTFRecordSink(filebasedsink.FileBasedSink):
    """Beam's TFRecord file sink, fed lists of records instead of one record per element.

    Per-element overhead dominates a Python pipeline at a million rows; writing a batch per
    element keeps the sink's temp-file, sharding and finalization logic without it.
    """

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
        framed = io.BytesIO()
        for record in records:
            _TFRecordUtil.write_record(framed, record)
        file_handle.write(framed.getvalue())


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


class WriteRejected(beam.PTransform):
    """Rejected records as JSON Lines (raw input escaped, never interpreted)."""

    def __init__(self, rejected_dir: str):
        super().__init__()
        self._prefix = join_path(rejected_dir, "rejected")

    def expand(self, rejected):
        return (
            rejected
            | "ToJson" >> beam.Map(lambda record: json.dumps(record, ensure_ascii=False))
            | "Write" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl", num_shards=1)
        )


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


def write_vocabulary(vocabulary: Vocabulary, path: str) -> str:
    """Writes one vocabulary file and returns its path."""
    vocabulary.save(path)
    return path


def build_metadata(
    config: Config,
    stats: Mapping[str, int],
    rejected_by_code: Mapping[str, int],
    vocabularies: Mapping[str, Vocabulary],
    shards: Mapping[str, Iterable[str]],
) -> dict:
    """metadata.json: what training needs to know of the shards, and where every row went.

    Raises RuntimeError if the row accounting does not add up, which would mean rows were
    lost: the job must not end green then.
    """
    pre = config.preprocess
    written = {split: stats.get(split, 0) for split in SPLITS}
    rejected_by_stage = collections.Counter()
    for key, count in rejected_by_code.items():
        rejected_by_stage[key.split("/")[0]] += count
    rows_in = stats.get("read", 0) + rejected_by_stage.get("read", 0)
    rows_rejected = sum(rejected_by_stage.values())
    if rows_in != sum(written.values()) + rows_rejected:
        raise RuntimeError(
            f"row accounting failed: {rows_in} rows in, {sum(written.values())} written, {rows_rejected} rejected"
        )
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
        "vocab_sizes": {name: len(v) for name, v in vocabularies.items()},
        "vocab_files": {name: f"vocab/{name}.txt" for name in vocabularies},
        "vocab_fingerprints": {name: v.fingerprint for name, v in vocabularies.items()},
        "max_lengths": max_lengths,
        "rows": {"in": rows_in, **written, "rejected": rows_rejected},
        "truncated": stats.get("truncated", 0),
        "rejected": {"by_stage": dict(rejected_by_stage), "by_reason": dict(sorted(rejected_by_code.items()))},
        "shards": {split: sorted(_basename(p) for p in paths) for split, paths in shards.items()},
    }


def write_json(payload: dict, path: str) -> str:
    """Writes a JSON document (local or gs://) and returns its path."""
    with FileSystems.create(path) as f:
        f.write((json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def read_json(path: str) -> Any:
    """A JSON document (local or gs://), or None when there is no such file."""
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def path_exists(path: str) -> bool:
    """Whether a file or a folder is there, local or gs://.

    Cloud Storage has no folders, only object names: ``FileSystems.exists`` finds an
    object named exactly ``path``, so a folder (a SavedModel, a shard folder) counts as
    there when some object's name starts with ``path/``.
    """
    if FileSystems.exists(path):
        return True
    return not FileSystems.get_filesystem(path).has_dirs() and bool(_objects_under(path, limit=1))


def delete_paths(paths: Iterable[str]) -> None:
    """Deletes files and folders with everything in them, local or gs://; missing paths are skipped."""
    for path in paths:
        if FileSystems.exists(path):
            FileSystems.delete([path])
        if not FileSystems.get_filesystem(path).has_dirs() and _objects_under(path, limit=1):
            FileSystems.delete([path.rstrip("/") + "/"])  # on gs://, a trailing '/' deletes the whole prefix


def _objects_under(folder: str, limit: int) -> list:
    return FileSystems.match([folder.rstrip("/") + "/**"], limits=[limit])[0].metadata_list


def write_text(text: str, path: str) -> str:
    """Writes a UTF-8 text file (local or gs://) and returns its path."""
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))
    return path


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]
