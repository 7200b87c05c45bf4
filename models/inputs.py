"""tf.data input pipelines over the preprocessing job's TFRecord shards.

Shapes, vocabulary sizes and the shard list come from ``metadata.json`` beside the shards,
never from guesses: the training job reads exactly what preprocessing wrote.
"""

from __future__ import annotations

import json
import posixpath
from typing import Optional

import tensorflow as tf
from apache_beam.io.filesystems import FileSystems

# Features of each task kind that hold one value per example; they come out as [batch].
_SCALARS = {"length", "label", "source_length", "target_length"}


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
) -> tf.data.Dataset:
    """Batches of parsed features (a dict of tensors) from one split's shards.

    Shards are interleaved and examples shuffled when ``shuffle`` (seeded for
    repeatability); parsing runs on whole batches; everything is prefetched.
    Scalar features (lengths, labels) come as ``[batch]``, sequences as ``[batch, width]``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    metadata = metadata or load_metadata(data_dir)
    paths = shard_paths(data_dir, metadata, split)
    spec = feature_spec(metadata)

    files = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=max(1, min(len(paths), 8)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,  # with the seed, the same order on every run
    )
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        records = records.repeat()

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        features = tf.io.parse_example(serialized, spec)
        return {name: tf.squeeze(value, axis=1) if name in _SCALARS else value for name, value in features.items()}

    return (
        records.batch(batch_size, drop_remainder=drop_remainder)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
