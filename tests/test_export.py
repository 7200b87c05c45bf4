"""Exported SavedModels of the emoji classifiers and the char LM, served on raw strings."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from seqbeam.pipelines import preprocess, train
from seqbeam.pipelines.config import config_from_dict

from conftest import EMOJI_CLASSES, emoji_corpus, saurus_names

CLASSES = EMOJI_CLASSES


@pytest.mark.parametrize("family", ["emojifier_v1", "emojifier_v2"])
def test_emojifier_export_serves_labels_probabilities_and_emojis(tmp_path, family):
    import tensorflow_text  # noqa: F401

    config = config_from_dict({
        "task": {"name": "emoji", "kind": "classifier", "classes": CLASSES},
        "data": {"format": "csv", "path": emoji_corpus(tmp_path / "emoji.csv"), "text_column": "sentence",
                 "label_column": "label"},
        "preprocess": {"max_length": 8, "num_shards": 1},
        "train": {"model": {"family": family, "embedding_dim": 16, "units": 16, "dropout": 0.1},
                  "epochs": 25 if family == "emojifier_v1" else 12, "batch_size": 16, "learning_rate": 0.02,
                  "early_stopping_patience": 0},
        "output_dir": str(tmp_path / "out"),
    })
    preprocess.run_config(config, save_main_session=False)
    summary = train.run_config(config)
    texts = ["I really love you", "what a GAME today!", "so sad now", "dinner now", "we eat food"]
    served = tf.saved_model.load(summary["model_path"]).signatures["serving_default"](text=tf.constant(texts))
    probabilities = served["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    labels = served["label"].numpy().tolist()
    assert [e.decode() for e in served["emoji"].numpy()] == [CLASSES[i] for i in labels]
    np.testing.assert_allclose(served["probability"].numpy(), probabilities.max(axis=1), rtol=1e-6)
    assert summary["metrics"]["valid"]["accuracy"] >= 0.9
    assert sum(a == b for a, b in zip(labels, [0, 1, 3, 4, 4])) >= 4


def test_char_lm_export_continues_prompts_and_samples_fresh_names(tmp_path):
    import tensorflow_text  # noqa: F401

    names = saurus_names()
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    config = config_from_dict({
        "task": {"name": "names", "kind": "lm"},
        "data": {"format": "text", "path": str(tmp_path / "names.txt")},
        "preprocess": {"tokenizer": {"level": "char"}, "max_length": 16, "num_shards": 1},
        "train": {"model": {"family": "char_lm", "embedding_dim": 16, "units": 64}, "epochs": 15,
                  "batch_size": 32, "learning_rate": 0.01, "clipnorm": 5.0, "early_stopping_patience": 0,
                  "export": {"temperature": 0.8}},
        "output_dir": str(tmp_path / "out"),
    })
    preprocess.run_config(config, save_main_session=False)
    summary = train.run_config(config)
    serve = tf.saved_model.load(summary["model_path"]).signatures["serving_default"]
    out = serve(text=tf.constant(["", "", "", "KiTo", "lu"]))
    texts = [t.decode() for t in out["text"].numpy()]
    assert texts[3].startswith("kito") and texts[4].startswith("lu")
    assert all(len(t) > 2 for t in texts) and np.all(out["score"].numpy() <= 0)
    assert sum(t.endswith("saurus") for t in texts) >= 3
