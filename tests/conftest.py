"""Shared helpers of the test suite: configs in temp folders, reading TFRecords back."""

from __future__ import annotations

import glob
import gzip
import os
import random
from pathlib import Path

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


def line_id(path, line: int, name: str = "") -> str:
    """The id of line ``line`` (1-based) of a corpus file: its name and the byte offset where the line starts.

    Lines end at ``\n``, ``\r\n`` or a lone ``\r``; offsets of a ``.gz`` file count its uncompressed bytes.
    """
    data = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        data = gzip.decompress(data)
    offset = sum(len(piece) for piece in data.splitlines(keepends=True)[: line - 1])
    return f"{name or Path(path).name}:{offset}"


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


EMOJI_CLASSES = ["❤️", "⚾", "😄", "😞", "🍴"]
EMOJI_KEYWORDS = [["love", "miss", "hug"], ["ball", "game", "score"], ["fun", "great", "joke"],
                  ["sad", "bad", "cry"], ["food", "eat", "dinner"]]
EMOJI_FILLER = ["i", "you", "we", "the", "a", "so", "really", "today", "now", "very"]


def emoji_corpus(path, rows: int = 300, seed: int = 0) -> str:
    """A ``sentence,label`` CSV whose label is given by one keyword per sentence; returns its path."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence,label\n")
        for _ in range(rows):
            label = rng.randrange(5)
            words = rng.sample(EMOJI_FILLER, 3) + [rng.choice(EMOJI_KEYWORDS[label])]
            rng.shuffle(words)
            f.write(f"{' '.join(words)},{label}\n")
    return str(path)


def saurus_names(seed: int = 1, count: int = 400) -> list[str]:
    """Sorted made-up names of 2-3 syllables ending in "saurus", for char LM tests."""
    rng = random.Random(seed)
    syllables = ["ba", "ki", "to", "ra", "me", "lu", "go", "ni"]
    return sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))) + "saurus"
                   for _ in range(count)})


def train_emoji_model(folder, rows: int = 300, **train) -> Config:
    """Preprocesses ``rows`` rows of :func:`emoji_corpus` under ``folder`` and trains and exports a
    small Emojifier-V1 on them (``train`` overrides the training keys); returns the config."""
    from seqbeam.pipelines import preprocess, train as train_job

    config = config_from_dict({
        "task": {"name": "emoji", "kind": "classifier", "classes": EMOJI_CLASSES},
        "data": {"format": "csv", "path": emoji_corpus(folder / "train.csv", rows=rows),
                 "text_column": "sentence", "label_column": "label"},
        "preprocess": {"max_length": 8, "num_shards": 1},
        "train": {"model": {"family": "emojifier_v1", "embedding_dim": 8, "dropout": 0.0}, "epochs": 3,
                  "batch_size": 32, "early_stopping_patience": 0, **train},
        "output_dir": str(folder / "out"),
    })
    preprocess.run_config(config, save_main_session=False)
    train_job.run_config(config)
    return config

