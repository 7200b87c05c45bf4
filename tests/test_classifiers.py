"""Classifier models: masking, learning on separable toy data, serialization, argument checks."""

import keras
import numpy as np
import pytest

from seqbeam.models.classifiers import (
    MaskedMean,
    build_emojifier_v1,
    build_emojifier_v2,
    build_grammar_classifier,
    compile_classifier,
)
from seqbeam.text.vocabulary import PAD_ID

NUM_CLASSES = 5
KEYWORDS_PER_CLASS = 10
FIRST_KEYWORD = 4  # ids 0..3 are the reserved tokens
FILLER = np.arange(FIRST_KEYWORD + NUM_CLASSES * KEYWORDS_PER_CLASS, 70)
VOCAB_SIZE = int(FILLER[-1]) + 1
MAX_LENGTH = 10

# Small V2 for speed; the architecture is the same at the default 128 units.
V2_SMALL = dict(embedding_dim=16, lstm_units=32)


@pytest.fixture(autouse=True)
def seed():
    keras.utils.set_random_seed(1234)


def pad(rows, length=MAX_LENGTH):
    out = np.full((len(rows), length), PAD_ID, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def keyword_corpus(n=500, seed=0):
    """Sentences of 3-8 ids: 1-3 keywords of the class mixed with shared filler ids."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    rows = []
    for label in labels:
        length = int(rng.integers(3, 9))
        n_keywords = int(rng.integers(1, 4))
        keywords = FIRST_KEYWORD + label * KEYWORDS_PER_CLASS + rng.integers(0, KEYWORDS_PER_CLASS, n_keywords)
        row = np.concatenate([keywords, rng.choice(FILLER, length - n_keywords)])
        rows.append(rng.permutation(row))
    return pad(rows), labels.astype(np.int64)


def fit(model, x, y, epochs, binary=False, learning_rate=1e-2):
    compile_classifier(model, learning_rate=learning_rate, binary=binary)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)["accuracy"]


# --- MaskedMean ---------------------------------------------------------------------------


def test_masked_mean_matches_numpy_from_mask_and_from_token_ids():
    rng = np.random.default_rng(0)
    ids = pad([[5, 6, 7], [8], [9, 10, 11, 12, 13]], length=6)
    vectors = rng.normal(size=(3, 6, 4)).astype("float32")
    mask = ids != PAD_ID
    expected = np.stack([vectors[i][mask[i]].mean(axis=0) for i in range(3)])

    layer = MaskedMean()
    np.testing.assert_allclose(layer(vectors, mask=mask), expected, rtol=1e-6)
    np.testing.assert_allclose(layer(vectors, token_ids=ids), expected, rtol=1e-6)
    # The mask an Embedding(mask_zero=True) propagates is used inside a functional model.
    tokens = keras.Input(shape=(6,), dtype="int64", name="tokens")
    embedding = keras.layers.Embedding(20, 4, mask_zero=True, name="embedding")
    model = keras.Model(tokens, MaskedMean(name="mean")(embedding(tokens)))
    table = embedding.get_weights()[0]
    expected = np.stack([table[row[row != PAD_ID]].mean(axis=0) for row in ids])
    np.testing.assert_allclose(model.predict(ids, verbose=0), expected, rtol=1e-5, atol=1e-7)


def test_masked_mean_all_padding_row_is_zero_not_nan():
    vectors = np.ones((2, 4, 3), dtype="float32")
    ids = pad([[5, 6], []], length=4)
    out = keras.ops.convert_to_numpy(MaskedMean()(vectors, token_ids=ids))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, [[1, 1, 1], [0, 0, 0]])
    # No mask at all: a plain mean over time.
    np.testing.assert_array_equal(MaskedMean()(vectors), np.ones((2, 3)))
    assert MaskedMean(pad_id=7, name="m").get_config()["pad_id"] == 7


# --- Masking inside the models -----------------------------------------------------------


@pytest.mark.parametrize("build, kwargs", [(build_emojifier_v1, {}), (build_emojifier_v2, V2_SMALL)])
def test_appended_padding_does_not_change_predictions(build, kwargs):
    sentences = [[5, 17, 60, 61], [30, 62, 31, 64, 65, 66, 67], [8]]
    long = build(vocab_size=VOCAB_SIZE, num_classes=NUM_CLASSES, max_length=MAX_LENGTH, **kwargs)
    # Same weights, no room for padding: the reference output of each sentence.
    for sentence in sentences:
        short = build(vocab_size=VOCAB_SIZE, num_classes=NUM_CLASSES, max_length=len(sentence), **kwargs)
        short.set_weights(long.get_weights())
        expected = short.predict(pad([sentence], len(sentence)), verbose=0)
        got = long.predict(pad([sentence]), verbose=0)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The ids still matter: a different sentence gives different probabilities.
    first, second = long.predict(pad(sentences[:2]), verbose=0)
    assert not np.allclose(first, second)
    # An all-padding row is well-defined.
    assert np.isfinite(long.predict(pad([[]]), verbose=0)).all()


def test_grammar_classifier_ignores_appended_padding():
    long = build_grammar_classifier(vocab_size=12, max_length=MAX_LENGTH, cell="lstm")
    short = build_grammar_classifier(vocab_size=12, max_length=4, cell="lstm")
    short.set_weights(long.get_weights())
    np.testing.assert_allclose(long.predict(pad([[4, 5, 6, 7]]), verbose=0),
                               short.predict(pad([[4, 5, 6, 7]], 4), verbose=0), rtol=1e-5, atol=1e-6)


# --- Shapes, outputs, named layers ------------------------------------------------------------


def test_shapes_names_and_probabilities():
    x, _ = keyword_corpus(n=7)
    v1 = build_emojifier_v1(vocab_size=VOCAB_SIZE, num_classes=NUM_CLASSES, max_length=MAX_LENGTH)
    v2 = build_emojifier_v2(vocab_size=VOCAB_SIZE, num_classes=NUM_CLASSES, max_length=MAX_LENGTH, **V2_SMALL)
    gru = build_grammar_classifier(vocab_size=VOCAB_SIZE, max_length=MAX_LENGTH)
    for model in (v1, v2):
        assert model.input.name == "tokens"
        for dtype in ("int32", "int64"):
            probabilities = model.predict(x.astype(dtype), verbose=0)
            assert probabilities.shape == (7, NUM_CLASSES)
            assert (probabilities >= 0).all()
            np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        assert not model.compiled  # the caller compiles
    assert [v1.name, v2.name, gru.name] == ["emojifier_v1", "emojifier_v2", "grammar_classifier"]
    assert v1.get_layer("mean").output.shape == (None, 50)
    # Any sequence length: training feeds MAX_LENGTH columns, serving pads to the longest row.
    assert v2.get_layer("lstm_1").output.shape == (None, None, 32)
    assert v2.get_layer("dropout_2").rate == 0.5
    assert isinstance(gru.get_layer("gru"), keras.layers.GRU)
    assert gru.get_layer("embedding").output_dim == 8
    probability = gru.predict(x, verbose=0)
    assert probability.shape == (7, 1) and ((probability > 0) & (probability < 1)).all()
    assert isinstance(build_grammar_classifier(vocab_size=5, max_length=3, cell="lstm").get_layer("lstm"),
                      keras.layers.LSTM)


# --- Learning ----------------------------------------------------------------------------------


def test_emojifier_v1_learns_keyword_classes():
    x, y = keyword_corpus()
    model = build_emojifier_v1(vocab_size=VOCAB_SIZE, num_classes=NUM_CLASSES, max_length=MAX_LENGTH)
    assert fit(model, x, y, epochs=8, learning_rate=3e-2) >= 0.95


def test_emojifier_v2_learns_keyword_classes():
    x, y = keyword_corpus()
    # The default architecture: 2 x LSTM(128), dropout 0.5.
    model = build_emojifier_v2(vocab_size=VOCAB_SIZE, num_classes=NUM_CLASSES, max_length=MAX_LENGTH)
    assert fit(model, x, y, epochs=6, learning_rate=3e-3) >= 0.95


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_grammar_classifier_learns_a_char_rule(cell):
    # Label: does char id 5 appear? Ids 4..11, lengths 2..10, about half the rows positive.
    rng = np.random.default_rng(1)
    rows, labels = [], []
    for _ in range(600):
        row = rng.integers(6, 12, size=int(rng.integers(2, MAX_LENGTH + 1)))
        if rng.random() < 0.5:
            row[rng.integers(0, len(row))] = 5
        rows.append(row)
        labels.append(int(5 in row))
    x, y = pad(rows), np.array(labels, dtype=np.int64)[:, None]
    model = build_grammar_classifier(vocab_size=12, max_length=MAX_LENGTH, units=16, cell=cell)
    assert fit(model, x, y, epochs=8, binary=True) >= 0.95


# --- Serialization --------------------------------------------------------------------------------


@pytest.mark.parametrize("build, kwargs", [
    (build_emojifier_v1, dict(num_classes=NUM_CLASSES)),
    (build_emojifier_v2, dict(num_classes=NUM_CLASSES, **V2_SMALL)),
    (build_grammar_classifier, dict(cell="lstm")),
])
def test_config_and_keras_file_round_trips(tmp_path, build, kwargs):
    x, _ = keyword_corpus(n=16)
    model = build(vocab_size=VOCAB_SIZE, max_length=MAX_LENGTH, **kwargs)
    expected = model.predict(x, verbose=0)

    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), expected)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]

    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert loaded.name == model.name


def test_compiled_model_round_trips_through_keras_file(tmp_path):
    x, y = keyword_corpus(n=64)
    model = compile_classifier(build_emojifier_v1(vocab_size=VOCAB_SIZE, num_classes=NUM_CLASSES,
                                                  max_length=MAX_LENGTH))
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "accuracy"}


# --- Caller-provided embedding ------------------------------------------------------------------


@pytest.mark.parametrize("build, kwargs", [(build_emojifier_v1, {}), (build_emojifier_v2, dict(lstm_units=16))])
def test_frozen_embedding_layer_keeps_its_weights(build, kwargs):
    x, y = keyword_corpus(n=128)
    pretrained = np.random.default_rng(3).normal(size=(VOCAB_SIZE, 12)).astype("float32")
    glove = keras.layers.Embedding(VOCAB_SIZE, 12, mask_zero=True, trainable=False, weights=[pretrained],
                                   name="glove")
    model = build(vocab_size=VOCAB_SIZE, num_classes=NUM_CLASSES, max_length=MAX_LENGTH,
                  embedding_layer=glove, **kwargs)
    assert model.get_layer("glove") is glove
    dense_before = model.get_layer("probabilities").get_weights()[0].copy()
    fit(model, x, y, epochs=2)
    np.testing.assert_array_equal(glove.get_weights()[0], pretrained)
    assert not np.array_equal(model.get_layer("probabilities").get_weights()[0], dense_before)


def test_embedding_layer_checks():
    common = dict(vocab_size=20, num_classes=3, max_length=5)
    with pytest.raises(ValueError, match="vocab_size"):
        build_emojifier_v1(**common, embedding_layer=keras.layers.Embedding(21, 4, mask_zero=True))
    with pytest.raises(ValueError, match="mask_zero"):
        build_emojifier_v2(**common, embedding_layer=keras.layers.Embedding(20, 4))
    with pytest.raises(TypeError, match="embedding_layer"):
        build_emojifier_v1(**common, embedding_layer=keras.layers.Dense(4))


# --- Argument validation --------------------------------------------------------------------------


@pytest.mark.parametrize("build, kwargs, argument", [
    (build_emojifier_v1, dict(vocab_size=0, num_classes=3, max_length=5), "vocab_size"),
    (build_emojifier_v1, dict(vocab_size=10, num_classes=1, max_length=5), "num_classes"),
    (build_emojifier_v1, dict(vocab_size=10, num_classes=3, max_length=-1), "max_length"),
    (build_emojifier_v1, dict(vocab_size=10, num_classes=3, max_length=5, embedding_dim=0), "embedding_dim"),
    (build_emojifier_v1, dict(vocab_size=10.0, num_classes=3, max_length=5), "vocab_size"),
    (build_emojifier_v2, dict(vocab_size=10, num_classes=3, max_length=5, lstm_units=0), "lstm_units"),
    (build_emojifier_v2, dict(vocab_size=10, num_classes=3, max_length=5, dropout=1.0), "dropout"),
    (build_emojifier_v2, dict(vocab_size=10, num_classes=3, max_length=5, dropout=-0.1), "dropout"),
    (build_emojifier_v2, dict(vocab_size=10, num_classes=True, max_length=5), "num_classes"),
    (build_grammar_classifier, dict(vocab_size=10, max_length=5, cell="rnn"), "cell"),
    (build_grammar_classifier, dict(vocab_size=10, max_length=5, units=0), "units"),
    (build_grammar_classifier, dict(vocab_size=10, max_length=0), "max_length"),
])
def test_argument_validation(build, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        build(**kwargs)


def test_compile_classifier_losses_and_validation():
    model = build_grammar_classifier(vocab_size=10, max_length=5)
    compile_classifier(model, binary=True)
    assert isinstance(model.loss, keras.losses.BinaryCrossentropy)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="learning_rate"):
        compile_classifier(model, learning_rate=0)
