"""Words the training set never used, understood through their pretrained vectors by the exported model.

A generated GloVe file gives each class a direction; the training sentences use two keywords
per class, and the test sentences use other words of the file that lie along the same
directions ("famished" beside "hungry"). With the vectors' words as the vocabulary
(``preprocess.source_vocab.vectors``) the exported SavedModel labels those sentences right;
with the training words' vocabulary (the behaviour before it) every such word is ``<unk>``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)

from seqbeam.configs.schema import config_from_dict
from seqbeam.pipelines import layout, preprocess, train
from seqbeam.text.vocabulary import Vocabulary

DIM = 8
CLASSES = ["love", "sports", "happy", "sad", "food"]
# Class c's words lie along axis c; the training keywords, then the words only the tests use.
KEYWORDS = {"love": ["love", "adore"], "sports": ["ball", "game"], "happy": ["happy", "glad"],
            "sad": ["sad", "unhappy"], "food": ["hungry", "eat"]}
UNSEEN = {"love": "cherish", "sports": "pitch", "happy": "joyful", "sad": "gloomy", "food": "famished"}
FILLERS = ["i", "you", "we", "am", "so", "very", "today", "really"]


def write_vectors(path) -> str:
    """A GloVe text file: keywords and unseen words along their class axis, fillers in the last three dims."""
    rng = np.random.default_rng(0)
    lines = []
    for label, name in enumerate(CLASSES):
        for word in [*KEYWORDS[name], UNSEEN[name]]:
            vector = np.zeros(DIM)
            vector[label] = 1.0 + 0.1 * rng.random()
            vector[5:] = 0.05 * rng.normal(size=3)
            lines.append(word + " " + " ".join(f"{v:.5f}" for v in vector))
    for word in FILLERS:
        vector = np.zeros(DIM)
        vector[5:] = 0.3 * rng.normal(size=3)
        lines.append(word + " " + " ".join(f"{v:.5f}" for v in vector))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def write_corpus(path) -> str:
    """60 training sentences: a keyword among fillers, labelled with its class."""
    rng = np.random.default_rng(1)
    rows = ["sentence,label"]
    for i in range(60):
        label = i % len(CLASSES)
        words = list(rng.choice(FILLERS, size=3)) + [KEYWORDS[CLASSES[label]][i // len(CLASSES) % 2]]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{label}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def train_and_export(folder, vectors: str, vocabulary_from_vectors: bool):
    """Preprocesses, trains an Emojifier-V1 on frozen vectors and exports it; (config, serving signature)."""
    config = config_from_dict({
        "task": {"name": "emoji", "kind": "classifier", "classes": CLASSES},
        "data": {"format": "csv", "path": write_corpus(folder / "train.csv"), "text_column": "sentence",
                 "label_column": "label"},
        "preprocess": {"max_length": 8, "num_shards": 1, "splits": {"train": 1.0, "valid": 0.0, "test": 0.0},
                       "source_vocab": {"vectors": vectors if vocabulary_from_vectors else ""}},
        "train": {"model": {"family": "emojifier_v1", "pretrained_vectors": vectors}, "epochs": 40,
                  "batch_size": 16, "learning_rate": 0.05, "early_stopping_patience": 0},
        "output_dir": str(folder / "out"),
    })
    preprocess.run_config(config, save_main_session=False)
    summary = train.run_config(config)
    return config, tf.saved_model.load(summary["model_path"]).signatures["serving_default"]


@pytest.fixture(scope="module")
def vectors_file(tmp_path_factory):
    return write_vectors(tmp_path_factory.mktemp("vectors") / "glove.8d.txt")


def test_an_exported_model_labels_words_it_never_trained_on_by_their_vectors(tmp_path, vectors_file):
    config, serve = train_and_export(tmp_path, vectors_file, vocabulary_from_vectors=True)
    corpus = open(config.data.path, encoding="utf-8").read()
    vocabulary = Vocabulary.load(layout.vocabulary_path(config, "tokens"))
    for word in UNSEEN.values():
        assert word not in corpus and word in vocabulary.tokens
    sentences = [f"i am so {UNSEEN[name]} today" for name in CLASSES]
    labels = serve(text=tf.constant(sentences))["label"].numpy().tolist()
    assert labels == list(range(len(CLASSES)))
    assert not os.path.exists(os.path.join(layout.train_dir(config), "backup"))


def test_with_the_training_words_vocabulary_every_unseen_word_is_the_same_unknown(tmp_path, vectors_file):
    config, serve = train_and_export(tmp_path, vectors_file, vocabulary_from_vectors=False)
    vocabulary = Vocabulary.load(layout.vocabulary_path(config, "tokens"))
    assert not set(UNSEEN.values()) & set(vocabulary.tokens)
    probabilities = serve(text=tf.constant(list(UNSEEN.values())))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, np.broadcast_to(probabilities[0], probabilities.shape), rtol=1e-6)
