"""Shared helpers of the test suite: configs in temp folders, reading TFRecords back."""

from __future__ import annotations

import glob
import gzip
import os
import random
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pyarrow.parquet as pq
import pytest

from seqbeam.configs.schema import Config, config_from_dict


def read_examples(data_dir: str, split: str) -> list[dict]:
    """Every Example of a split's shards as {feature: list of values}, ids decoded."""
    import tensorflow as tf  # here, not at the top: xdist's controller process loads this file too

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


def read_rejected(folder: str) -> list[dict]:
    """Every rejected record of a job's ``rejected/`` folder (Parquet shards), sorted by id."""
    records = []
    for path in sorted(glob.glob(os.path.join(folder, "rejected-*.parquet"))):
        records += pq.read_table(path).to_pylist()
    return sorted(records, key=lambda r: r["id"])


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
    return _train_emoji_model(folder, rows, **train)[0]


def _train_emoji_model(folder, rows: int = 300, **train) -> tuple[Config, dict]:
    """:func:`train_emoji_model`, returning the training job's summary too."""
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
    return config, train_job.run_config(config)


# ------------------------------------------------------------------------------ models shared by the session
#
# Training is the slow part of the suite: each model below is trained once per test process
# (once per xdist worker) and shared by every module that only needs *a* trained model of its
# kind. Tests treat these folders as read-only: they write their own outputs elsewhere
# (``output_dir``, ``tmp_path``), or work on a copy (:func:`copy_task`).

# The emoji classifier of the inference, fault, fuzz, scale and export tests: confident enough
# that its probabilities cross infer.emoji_threshold (0.4), small enough to train in seconds.
SHARED_EMOJI_TRAIN = {"model": {"family": "emojifier_v1", "embedding_dim": 16, "dropout": 0.1}, "epochs": 25,
                      "batch_size": 16, "learning_rate": 0.02}


@pytest.fixture(scope="session")
def shared_emoji(tmp_path_factory):
    """An Emojifier-V1 trained and exported on 300 rows of :func:`emoji_corpus`, once per session.

    A namespace: ``config`` (writing under ``folder / "out"``), ``folder`` and ``summary``, the
    training job's summary (``model``, ``model_path``, ``metrics``).
    """
    folder = tmp_path_factory.mktemp("shared-emoji")
    config, summary = _train_emoji_model(folder, **SHARED_EMOJI_TRAIN)
    return SimpleNamespace(config=config, folder=folder, summary=summary)


def copy_task(config: Config, folder) -> Config:
    """``config`` writing under ``folder``, with a copy of its task folder (data, model, training) there.

    For tests that write into the task folder of a shared model (inference outputs, reruns):
    the copy's model is the same SavedModel, served as ``config`` would serve it.
    """
    import dataclasses
    import shutil

    moved = dataclasses.replace(config, output_dir=str(folder))
    shutil.copytree(config.task_dir, moved.task_dir)
    return moved


# The char LM of the inference and export tests: made-up "-saurus" names, sampled at 0.8.
SHARED_NAMES_TRAIN = {"model": {"family": "char_lm", "embedding_dim": 16, "units": 64}, "epochs": 15,
                      "batch_size": 32, "learning_rate": 0.01, "clipnorm": 5.0, "early_stopping_patience": 0,
                      "export": {"temperature": 0.8}}


@pytest.fixture(scope="session")
def shared_names(tmp_path_factory):
    """A char LM trained and exported on :func:`saurus_names`, once per session: a namespace of
    ``config`` (its infer section samples 300 names, seed 3), ``names`` (the corpus, a set) and ``summary``."""
    from seqbeam.pipelines import preprocess, train as train_job

    folder = tmp_path_factory.mktemp("shared-names")
    names = saurus_names()
    (folder / "names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    config = config_from_dict({
        "task": {"name": "names", "kind": "lm"},
        "data": {"format": "text", "path": str(folder / "names.txt")},
        "preprocess": {"tokenizer": {"level": "char"}, "max_length": 16, "num_shards": 1},
        "train": SHARED_NAMES_TRAIN,
        "infer": {"num_samples": 300, "max_batch_size": 64, "seed": 3},
        "output_dir": str(folder / "out"),
    })
    preprocess.run_config(config, save_main_session=False)
    return SimpleNamespace(config=config, names=set(names), summary=train_job.run_config(config))


# ------------------------------------------------------------------------------ test order
#
# `make test` runs the files on two processes (pytest-xdist, --dist loadfile: a file's module
# fixtures are built once) and hands them out in collection order. The longest files go first,
# so that neither process is left running one of them alone at the end; the others follow in
# their usual order. (Ordered by the seconds each file took in `make test`, from its --durations.)
LONGEST_FIRST = ("test_train.py", "test_scale.py", "test_run.py", "test_fuzz.py", "test_dates_model.py",
                 "test_multiworker.py", "test_infer.py", "test_faults.py", "test_preprocess.py", "test_vocabulary.py",
                 "test_cli.py", "test_gcs.py", "test_wordpiece.py", "test_seq2seq.py", "test_export.py", "test_classifiers.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order
