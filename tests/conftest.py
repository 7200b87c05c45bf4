"""Shared helpers of the test suite: configs in temp folders, reading TFRecords back."""

from __future__ import annotations

import glob
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import tensorflow as tf

from seqbeam.pipelines.config import Config, config_from_dict


def read_examples(data_dir: str, split: str) -> list[dict]:
    """Every Example of a split's shards as {feature: list of values}, ids decoded."""
    rows = []
    for path in sorted(glob.glob(os.path.join(data_dir, f"{split}-*.tfrecord.gz"))):
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            row = {}
            for name, feature in example.features.feature.items():
                if feature.HasField("bytes_list"):
                    row[name] = feature.bytes_list.value[0].decode("utf-8")
                else:
                    row[name] = list(feature.int64_list.value)
            rows.append(row)
    return sorted(rows, key=lambda r: r["id"])


@pytest.fixture
def make_config(tmp_path):
    """Builds a validated Config writing under tmp_path from nested dict overrides."""

    def make(task: dict, data: dict, preprocess: dict | None = None) -> Config:
        raw = {
            "task": task,
            "data": data,
            "preprocess": {"num_shards": 1, "batch_size": 64, **(preprocess or {})},
            "output_dir": str(tmp_path / "out"),
        }
        return config_from_dict(raw, source="test")

    return make
