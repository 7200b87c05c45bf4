"""tf.data input pipelines over the preprocessing job's TFRecord shards.

Shapes, vocabulary sizes and the shard list come from ``metadata.json`` beside the shards,
never from guesses: the training job reads exactly what preprocessing wrote.

Under a multi-worker strategy each worker reads its own shard FILES (:func:`worker_shards`):
the files are dealt out before anything is read, so no worker opens, decompresses or parses
another's records. With fewer non-empty files than workers, every worker reads every file
and keeps one record in N, before batching (see :func:`worker_shards` for why that beats
failing).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import posixpath
from typing import Optional, Sequence

import tensorflow as tf
from apache_beam.io.filesystems import FileSystems

_LOG = logging.getLogger(__name__)

# Features of each task kind that hold one value per example; they come out as [batch].
_SCALARS = {"length", "label", "source_length", "target_length"}
# The sink writes every one of its num_shards files, with records or not; a gzip file this
# small may hold none, so it is opened to see (a real shard is far larger: no read).
_SMALL_SHARD_BYTES = 4096


def load_metadata(data_dir: str) -> dict:
    """The ``metadata.json`` of a preprocessed task (local or gs://).

    Read with Beam's filesystems, which wrote it: TensorFlow's GCS client caches an
    object's size for 5 s and fails on a metadata.json rewritten meanwhile (a rerun).
    """
    path = posixpath.join(data_dir, "metadata.json")
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"{path} not found: run `seqbeam preprocess` for this task first")
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def feature_spec(metadata: dict) -> dict[str, tf.io.FixedLenFeature]:
    """The ``tf.io.parse_example`` spec of the task's records (DESIGN.md contracts)."""
    kind, lengths = metadata["kind"], metadata["max_lengths"]
    if kind == "seq2seq":
        widths = {"source": lengths["source"], "source_length": 1, "target_in": lengths["target"],
                  "target_out": lengths["target"], "target_length": 1}
    elif kind == "lm":
        widths = {"tokens": lengths["tokens"], "targets": lengths["tokens"], "length": 1}
    elif kind == "classifier":
        widths = {"tokens": lengths["tokens"], "length": 1, "label": 1}
    else:
        raise ValueError(f"metadata.json names an unknown task kind {kind!r}")
    spec = {name: tf.io.FixedLenFeature([width], tf.int64) for name, width in widths.items()}
    spec["id"] = tf.io.FixedLenFeature([], tf.string)
    return spec


def shard_paths(data_dir: str, metadata: dict, split: str) -> list[str]:
    """Paths of a split's shards, as listed in metadata.json."""
    if split not in metadata["shards"]:
        raise ValueError(f"unknown split {split!r}; metadata.json lists {sorted(metadata['shards'])}")
    return [posixpath.join(data_dir, name) for name in metadata["shards"][split]]


@dataclasses.dataclass(frozen=True)
class WorkerShards:
    """What one input pipeline reads: ``files``, then every ``record_shards``-th record from ``record_index``.

    ``record_shards == 1`` is file-level sharding (the files are this worker's alone).
    """

    files: tuple[str, ...]
    record_shards: int = 1
    record_index: int = 0


def deal_files(sizes: dict[str, int], num_workers: int) -> list[list[str]]:
    """The files dealt out to ``num_workers``: largest first, each to the least loaded worker.

    Balances bytes (shards written one per bundle vary in size) and depends only on the
    listing, so every worker computes the same assignment; with at least ``num_workers``
    files, every worker gets one. Each worker's files come back sorted.

    >>> deal_files({"a": 5, "b": 3, "c": 3, "d": 1}, 2)
    [['a', 'd'], ['b', 'c']]
    """
    loads = [(0, worker) for worker in range(num_workers)]
    dealt: list[list[str]] = [[] for _ in range(num_workers)]
    for path in sorted(sizes, key=lambda p: (-sizes[p], p)):
        load, worker = heapq.heappop(loads)
        dealt[worker].append(path)
        heapq.heappush(loads, (load + sizes[path], worker))
    return [sorted(files) for files in dealt]


def worker_shards(paths: Sequence[str], num_workers: int, worker: int) -> WorkerShards:
    """The share of ``paths`` (one split's shards) that input pipeline ``worker`` of ``num_workers`` reads.

    File-level when there are at least as many non-empty files as workers. Otherwise every
    worker reads every file and keeps its records by position, with a warning naming
    ``preprocess.num_shards``: the job stays correct (each record on one worker exactly)
    and only the read is repeated, which matters little for a split small enough to sit in
    fewer files than there are workers; failing instead would stop a run over a setting
    that only costs I/O. Empty files are left out (a worker of only empty files would end
    its repeated dataset at once and leave the others waiting in a collective).
    """
    sizes = _file_sizes(paths)
    files = {path: size for path, size in sizes.items() if size >= _SMALL_SHARD_BYTES or _holds_records(path)}
    if num_workers <= 1:
        return WorkerShards(tuple(sorted(files)))
    if len(files) < num_workers:
        _LOG.warning("%d non-empty shard file(s) for %d workers: each worker reads all of them and keeps 1 record "
                     "in %d; preprocess with preprocess.num_shards >= %d to read each file once",
                     len(files), num_workers, num_workers, num_workers)
        return WorkerShards(tuple(sorted(files)), record_shards=num_workers, record_index=worker)
    return WorkerShards(tuple(deal_files(files, num_workers)[worker]))


def _file_sizes(paths: Sequence[str]) -> dict[str, int]:
    """Size of each path, from one listing per folder (not one request per file on gs://)."""
    folders = sorted({posixpath.dirname(path) for path in paths})
    listed = {}
    for folder in folders:
        for match in FileSystems.match([posixpath.join(folder, "*")])[0].metadata_list:
            listed[match.path] = match.size_in_bytes
    missing = [path for path in paths if path not in listed]
    if missing:
        raise FileNotFoundError(f"shards listed in metadata.json are missing: {missing[:3]} "
                                "(run `seqbeam preprocess` for this task again)")
    return {path: listed[path] for path in paths}


def _holds_records(path: str) -> bool:
    return any(True for _ in tf.data.TFRecordDataset(path, compression_type="GZIP").take(1))


def make_dataset(
    data_dir: str,
    split: str,
    *,
    batch_size: int,
    shuffle: bool = False,
    shuffle_buffer: int = 10_000,
    seed: Optional[int] = None,
    repeat: bool = False,
    drop_remainder: bool = False,
    metadata: Optional[dict] = None,
    input_context: Optional[tf.distribute.InputContext] = None,
    length_window: int = 0,
) -> tf.data.Dataset:
    """Batches of parsed features (a dict of tensors) from one split's shards.

    Shards are interleaved and examples shuffled when ``shuffle`` (seeded for
    repeatability); parsing runs on whole batches; everything is prefetched.
    Scalar features (lengths, labels) come as ``[batch]``, sequences as ``[batch, width]``.
    With ``input_context`` (``strategy.distribute_datasets_from_function``), the dataset is
    that input pipeline's share only (:func:`worker_shards`) and ``batch_size`` is per replica.
    Without ``repeat`` it is one pass: every example of the share once, the last batch partial.

    ``length_window`` > 0 (seq2seq records): batches of similar lengths. Each window of
    ``length_window`` batches' records (after the shuffle) is sorted by ``target_length``,
    then ``source_length`` (the decoder's steps and softmaxes cost the most), and cut into
    batches; the batches are shuffled, and each one's sources and targets are cut to their
    longest: a batch of short messages costs short sequences, not ``max_length`` encoder
    steps and ``max_target_length`` decoder steps (on the gettext corpus, 88 % of the target
    positions computed are real tokens, against 49 % with batches sorted by source length and
    cut to multiples of 8). Keras traces its train step with ``reduce_retracing``, so the
    many batch shapes cost a few traces, not one each.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    metadata = metadata or load_metadata(data_dir)
    if length_window > 0 and metadata["kind"] != "seq2seq":
        raise ValueError(f"length_window sorts seq2seq records by source length, not {metadata['kind']!r} ones")
    paths = shard_paths(data_dir, metadata, split)
    spec = feature_spec(metadata)
    if input_context is None:
        share = WorkerShards(tuple(paths))
    else:
        share = worker_shards(paths, input_context.num_input_pipelines, input_context.input_pipeline_id)

    files = tf.data.Dataset.from_tensor_slices(tf.constant(share.files, dtype=tf.string, shape=[len(share.files)]))
    if shuffle and share.record_shards == 1:  # shuffled files would deal different records to each worker
        files = files.shuffle(max(1, len(share.files)), seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=max(1, min(len(share.files), 8)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,  # with the seed, the same order on every run
    )
    if share.record_shards > 1:  # before the shuffle: the same record order on every worker
        records = records.shard(share.record_shards, share.record_index)
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        records = records.repeat()

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        features = tf.io.parse_example(serialized, spec)
        return {name: tf.squeeze(value, axis=1) if name in _SCALARS else value for name, value in features.items()}

    if length_window > 0:
        return (
            records.batch(batch_size * length_window)
            .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
            .map(_sorted_by_lengths, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
            .batch(batch_size, drop_remainder=drop_remainder)
            .map(_cut_to_longest, num_parallel_calls=tf.data.AUTOTUNE)
            .shuffle(length_window, seed=seed, reshuffle_each_iteration=True)
            .prefetch(tf.data.AUTOTUNE)
        )
    return (
        records.batch(batch_size, drop_remainder=drop_remainder)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def _sorted_by_lengths(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    key = features["target_length"] * (tf.shape(features["source"], out_type=tf.int64)[1] + 1) + features["source_length"]
    order = tf.argsort(key, stable=True)
    return {name: tf.gather(value, order) for name, value in features.items()}


def _cut_to_longest(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """A seq2seq batch's sources and targets cut to their longest (only padding goes)."""
    cut = dict(features)
    for names, length in ((("source",), "source_length"), (("target_in", "target_out"), "target_length")):
        longest = tf.reduce_max(tf.concat([features[length], [1]], axis=0))
        for name in names:
            cut[name] = features[name][:, :longest]
    return cut
