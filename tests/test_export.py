"""Exported SavedModels of the emoji classifiers and the char LM, served on raw strings; atomic exports."""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from seqbeam.pipelines import layout, preprocess, train
from seqbeam.models import export as export_module
from seqbeam.models.export import MODEL_CARD, export_model
from seqbeam.models.inputs import load_metadata
from seqbeam.configs.schema import config_from_dict
from seqbeam.transforms.inference import resolve_model_path

from conftest import EMOJI_CLASSES, emoji_corpus

CLASSES = EMOJI_CLASSES


@pytest.mark.parametrize("family", ["emojifier_v1", "emojifier_v2"])
def test_emojifier_export_serves_labels_probabilities_and_emojis(tmp_path, family, request):
    import tensorflow_text  # noqa: F401

    if family == "emojifier_v1":  # the session's: these keys, 25 epochs, on 300 rows (conftest.SHARED_EMOJI_TRAIN)
        summary = request.getfixturevalue("shared_emoji").summary
    else:
        config = config_from_dict({
            "task": {"name": "emoji", "kind": "classifier", "classes": CLASSES},
            "data": {"format": "csv", "path": emoji_corpus(tmp_path / "emoji.csv"), "text_column": "sentence",
                     "label_column": "label"},
            "preprocess": {"max_length": 8, "num_shards": 1},
            "train": {"model": {"family": family, "embedding_dim": 16, "units": 16, "dropout": 0.1},
                      "epochs": 12, "batch_size": 16, "learning_rate": 0.02, "early_stopping_patience": 0},
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


def test_char_lm_export_continues_prompts_and_samples_fresh_names(shared_names):
    import tensorflow_text  # noqa: F401

    # The session's char LM: saurus_names(), 15 epochs of char_lm(16, 64), sampled at 0.8 (conftest.SHARED_NAMES_TRAIN).
    summary = shared_names.summary
    serve = tf.saved_model.load(summary["model_path"]).signatures["serving_default"]
    out = serve(text=tf.constant(["", "", "", "KiTo", "lu"]))
    texts = [t.decode() for t in out["text"].numpy()]
    assert texts[3].startswith("kito") and texts[4].startswith("lu")
    assert all(len(t) > 2 for t in texts) and np.all(out["score"].numpy() <= 0)
    assert sum(t.endswith("saurus") for t in texts) >= 3


# --- an export appears complete or not at all ---------------------------------------------------


@pytest.fixture(scope="module")
def emoji_export(shared_emoji):
    """A small trained and exported Emojifier-V1, the session's: (config, training summary).

    Read-only: the tests below export again under their tmp_path, never beside it.
    """
    return shared_emoji.config, shared_emoji.summary


def export_again(config, summary, model_root: str = "") -> str:
    data_dir = layout.data_dir(config)
    return export_model(config, summary["model"], load_metadata(data_dir), data_dir, {}, model_root=model_root)


def test_an_export_is_renamed_into_place_whole_and_leaves_no_temporary_folder(emoji_export):
    config, summary = emoji_export
    root = os.path.join(config.task_dir, "model")
    version = os.path.basename(summary["model_path"])
    assert version.isdigit() and os.listdir(root) == [version]
    assert {"saved_model.pb", "variables", "assets", MODEL_CARD} <= set(os.listdir(summary["model_path"]))
    assert resolve_model_path("", root) == summary["model_path"]


def copy_without_card(source: str, target: str) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(MODEL_CARD))


def test_inference_resolves_the_newest_complete_version_past_half_written_ones(emoji_export, tmp_path, caplog):
    _, summary = emoji_export
    root = tmp_path / "model"
    complete = root / "1700000000"
    shutil.copytree(summary["model_path"], complete)
    copy_without_card(summary["model_path"], root / "1700000100")  # renamed, card not written yet
    shutil.copytree(summary["model_path"], root / ".tmp-1700000200-0123abcd")  # staging: never a version
    (root / "1700000300").mkdir()
    shutil.copy(complete / MODEL_CARD, root / "1700000300" / MODEL_CARD)  # a card, but no SavedModel (yet)
    with caplog.at_level(logging.WARNING, logger="seqbeam.transforms.inference"):
        assert resolve_model_path("", str(root)) == str(complete)
    assert "1700000100" in caplog.text and "export unfinished" in caplog.text
    # Numbers, not strings: version 10 is newer than version 9.
    shutil.copytree(summary["model_path"], root / "17000000000")
    assert resolve_model_path("", str(root)) == str(root / "17000000000")

    only_unfinished = tmp_path / "unfinished"
    copy_without_card(summary["model_path"], only_unfinished / "1700000100")
    with pytest.raises(FileNotFoundError, match=r"no exported model under .*unfinished/ \(1 unfinished"):
        resolve_model_path("", str(only_unfinished))


def test_an_export_interrupted_after_the_saved_model_leaves_no_version_to_serve(emoji_export, tmp_path, monkeypatch):
    config, summary = emoji_export
    root = tmp_path / "model"
    older = export_again(config, summary, model_root=str(root))
    written = []

    def card_writer_fails(path, card):
        written.append(sorted(os.listdir(path)))
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "write_model_card", card_writer_fails)
    with pytest.raises(OSError, match="disk full"):
        export_again(config, summary, model_root=str(root))
    assert "saved_model.pb" in written[0] and "variables" in written[0]  # it failed after the SavedModel
    assert os.listdir(root) == [os.path.basename(older)]  # the unfinished export removed itself
    assert resolve_model_path("", str(root)) == older


def test_exports_in_the_same_second_get_versions_of_their_own(emoji_export, tmp_path, monkeypatch):
    config, summary = emoji_export
    monkeypatch.setattr(export_module.time, "time", lambda: 1_700_000_000.5)
    paths = [export_again(config, summary, model_root=str(tmp_path)) for _ in range(2)]
    assert [os.path.basename(p) for p in paths] == ["1700000000", "1700000001"]
    assert all(os.path.exists(os.path.join(p, MODEL_CARD)) for p in paths)
    assert resolve_model_path("", str(tmp_path)) == paths[1]
