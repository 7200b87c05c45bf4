"""Sequence classifiers of the ``emoji`` and ``reber`` tasks, as plain Keras 3 functional models.

Every model takes one named input, ``tokens``: int ids ``[batch, length]`` padded with
``PAD_ID = 0`` exactly as the classifier TFRecords hold them (``transforms/encode.py``);
training feeds ``max_length`` columns, serving pads a batch only to its longest row.
The first layer is an ``Embedding(mask_zero=True)``, so padding never counts: the mask it
propagates is consumed by :class:`MaskedMean` or by the recurrent layers, and a sentence
gives the same probabilities however much padding follows it.

- :func:`build_emojifier_v1`: mean of the word vectors -> softmax (Coursera "Emojifier-V1").
- :func:`build_emojifier_v2`: 2 x LSTM with dropout -> softmax ("Emojifier-V2").
- :func:`build_grammar_classifier`: char-level GRU or LSTM -> sigmoid (embedded Reber grammar).

The builders return uncompiled models that output probabilities (softmax rows, or one
sigmoid per row); the training job compiles them, e.g. with :func:`compile_classifier`,
under whatever distribution strategy it runs. The output layers compute in float32 so that
the probabilities stay well-formed under a ``mixed_float16`` policy.

Masking note: on a GPU, Keras runs LSTM/GRU through cuDNN only when the mask is
right-padded (all ids first, all padding after), which is what the encoder writes.

>>> model = build_emojifier_v1(vocab_size=100, num_classes=5, max_length=10)
>>> model.output_shape
(None, 5)
"""

from __future__ import annotations

import numbers
from typing import Optional

import keras
from keras import ops

from seqbeam.text.vocabulary import PAD_ID

TOKENS = "tokens"
_CELLS = ("gru", "lstm")


@keras.saving.register_keras_serializable(package="seqbeam")
class MaskedMean(keras.layers.Layer):
    """Mean over time of ``[batch, time, features]`` vectors, counting non-padding steps only.

    The positions kept are, in order of precedence: those of ``token_ids`` that are not
    ``pad_id`` when token ids are given; those of the Keras mask propagated by an
    ``Embedding(mask_zero=True)``; every position otherwise. A row with no kept position
    (all padding) gives a zero vector, not NaN. The layer consumes the mask: its output
    ``[batch, features]`` carries none.
    """

    def __init__(self, pad_id: int = PAD_ID, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = int(pad_id)
        self.supports_masking = True

    def call(self, inputs, token_ids=None, mask=None):
        if token_ids is not None:
            mask = ops.not_equal(token_ids, ops.cast(self.pad_id, token_ids.dtype))
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), axis=-1)  # [batch, time, 1]
        total = ops.sum(inputs * weights, axis=1)
        count = ops.sum(weights, axis=1)  # [batch, 1]
        # max(count, 1): an all-padding row gives 0 / 1 = 0 instead of 0 / 0 = NaN.
        return total / ops.maximum(count, ops.ones_like(count))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}


def build_emojifier_v1(
    *,
    vocab_size: int,
    num_classes: int,
    max_length: int,
    embedding_dim: int = 50,
    embedding_layer: Optional[keras.layers.Embedding] = None,
    name: str = "emojifier_v1",
) -> keras.Model:
    """Emojifier-V1: the average of the sentence's word vectors, then a softmax layer.

    Word order is ignored, which is why it is cheap and works with few examples when the
    word vectors are pretrained (pass them frozen as ``embedding_layer``; ``embedding_dim``
    is then taken from that layer). Layers: ``embedding`` -> ``mean`` (:class:`MaskedMean`)
    -> ``probabilities`` (Dense softmax, ``[batch, num_classes]``).
    """
    _check_classifier_args(vocab_size=vocab_size, num_classes=num_classes, max_length=max_length,
                           embedding_dim=embedding_dim)
    tokens = _tokens_input(max_length)
    embedded = _embedding(embedding_layer, vocab_size, embedding_dim)(tokens)
    mean = MaskedMean(name="mean")(embedded)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                       name="probabilities")(mean)
    return keras.Model(inputs=tokens, outputs=probabilities, name=name)


def build_emojifier_v2(
    *,
    vocab_size: int,
    num_classes: int,
    max_length: int,
    embedding_dim: int = 50,
    lstm_units: int = 128,
    dropout: float = 0.5,
    embedding_layer: Optional[keras.layers.Embedding] = None,
    name: str = "emojifier_v2",
) -> keras.Model:
    """Emojifier-V2: two stacked LSTMs read the sentence in order, then a softmax layer.

    Unlike V1 it sees word order ("not happy"). The padding mask flows from the embedding
    through both LSTMs, so padded steps neither update the state nor reach the output.
    Layers: ``embedding`` -> ``lstm_1`` (sequences) -> ``dropout_1`` -> ``lstm_2`` (last
    state) -> ``dropout_2`` -> ``probabilities`` (Dense softmax, ``[batch, num_classes]``).
    """
    _check_classifier_args(vocab_size=vocab_size, num_classes=num_classes, max_length=max_length,
                           embedding_dim=embedding_dim)
    _check_positive_int("lstm_units", lstm_units)
    _check_dropout(dropout)
    tokens = _tokens_input(max_length)
    x = _embedding(embedding_layer, vocab_size, embedding_dim)(tokens)
    x = keras.layers.LSTM(lstm_units, return_sequences=True, name="lstm_1")(x)
    x = keras.layers.Dropout(dropout, name="dropout_1")(x)
    x = keras.layers.LSTM(lstm_units, name="lstm_2")(x)
    x = keras.layers.Dropout(dropout, name="dropout_2")(x)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                       name="probabilities")(x)
    return keras.Model(inputs=tokens, outputs=probabilities, name=name)


def build_grammar_classifier(
    *,
    vocab_size: int,
    max_length: int,
    embedding_dim: int = 8,
    units: int = 32,
    cell: str = "gru",
    name: str = "grammar_classifier",
) -> keras.Model:
    """Embedded Reber grammar classifier: is this character string grammatical?

    The task needs memory over the whole string (the second character must match the
    second to last), which a single GRU or LSTM learns. Layers: ``embedding`` (chars) ->
    ``gru`` or ``lstm`` (last state, padding masked) -> ``probability`` (Dense sigmoid,
    ``[batch, 1]``: the probability that the string is grammatical).
    """
    _check_positive_int("vocab_size", vocab_size)
    _check_positive_int("max_length", max_length)
    _check_positive_int("embedding_dim", embedding_dim)
    _check_positive_int("units", units)
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {_CELLS}, got {cell!r}")
    tokens = _tokens_input(max_length)
    x = _embedding(None, vocab_size, embedding_dim)(tokens)
    recurrent = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
    x = recurrent(units, name=cell)(x)
    probability = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(inputs=tokens, outputs=probability, name=name)


def compile_classifier(model: keras.Model, *, learning_rate: float = 1e-3, binary: bool = False) -> keras.Model:
    """Compiles ``model`` in place with Adam, cross-entropy on probabilities and accuracy.

    ``binary=False``: sparse categorical cross-entropy for integer labels ``[batch]`` or
    ``[batch, 1]`` against softmax rows. ``binary=True``: binary cross-entropy for 0/1
    labels against one sigmoid. The accuracy metric is named ``accuracy`` in both cases.
    Returns the model, for chaining.
    """
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule) and (
            isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) or not learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number or a schedule, got {learning_rate!r}")
    if binary:
        loss = keras.losses.BinaryCrossentropy(from_logits=False)
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=False)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=[accuracy])
    return model


def _tokens_input(max_length: int) -> keras.KerasTensor:
    # int64 as in the TFRecords; int32 arrays are accepted too (the model casts its inputs).
    # Any length: training feeds max_length columns, serving pads a batch only to its longest row.
    return keras.Input(shape=(None,), dtype="int64", name=TOKENS)


def _embedding(layer: Optional[keras.layers.Embedding], vocab_size: int, embedding_dim: int):
    """The caller's embedding layer after checks, or a new trainable one named ``embedding``."""
    if layer is None:
        return keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")
    if not isinstance(layer, keras.layers.Embedding):
        raise TypeError(f"embedding_layer must be a keras.layers.Embedding, got {type(layer).__name__}")
    if layer.input_dim != vocab_size:
        raise ValueError(f"embedding_layer has input_dim {layer.input_dim}, but vocab_size is {vocab_size}")
    if not layer.mask_zero:
        raise ValueError("embedding_layer must be built with mask_zero=True so that padding (id 0) is masked")
    return layer


def _check_classifier_args(*, vocab_size, num_classes, max_length, embedding_dim) -> None:
    _check_positive_int("vocab_size", vocab_size)
    _check_positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes!r}")
    _check_positive_int("max_length", max_length)
    _check_positive_int("embedding_dim", embedding_dim)


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_dropout(value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {value!r}")
