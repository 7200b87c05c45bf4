"""LSTM encoder-decoder with teacher forcing and optional Luong attention (``translate``, ``dates``).

The model reads the seq2seq TFRecord features of ``transforms/encode.py``: ``source``
``[batch, source_length]`` and ``target_in`` (``<start>`` + target) ``[batch, target_length]``,
both int ids padded with ``PAD_ID = 0``, and predicts ``target_out`` (target + ``<end>``) as
logits ``[batch, target_length, target_vocab_size]`` (float32). The same builder serves word
level translation and char level date normalization: only the vocabularies differ.

Layers (every one named, so that :class:`seqbeam.models.decoding.Seq2SeqDecoder` can reuse
them one step at a time with ``model.get_layer(name)``):

- ``source_embedding`` (``mask_zero``) -> ``source_dropout`` -> ``encoder``: an LSTM (or a GRU,
  ``cell="gru"``: three gates instead of four, a third less work per step), or a
  Bidirectional one, returning its outputs and final state (LSTM ``[h, c]``, GRU ``[h]``).
- Bidirectional only: ``encoder_state_h`` / ``encoder_state_c`` (LSTM) concatenate the forward
  and backward final states (``[batch, 2 * units]``); ``bridge_h`` (Dense tanh, the range of an
  RNN output) and ``bridge_c`` (linear Dense: a cell state is unbounded) map them to
  ``units``. The decoder keeps ``units`` cells either way, so a model's decoding cost does
  not depend on the encoder kind.
- ``target_embedding`` (``mask_zero``) -> ``target_dropout`` -> ``decoder``: an RNN of the same
  cell and ``units`` started from the encoder's (bridged) final state.
- With attention: ``attention`` (:class:`LuongAttention`) lets every decoder step look at all
  encoder outputs, the source padding masked out; ``attention_concat`` joins
  ``[decoder output; context]`` and ``attention_combine`` (Dense ``units``, tanh) mixes them
  (Luong et al. 2015, eq. 5). The score is ``dot`` when encoder outputs and decoder states
  have the same width (unidirectional encoder), ``general`` (``h_t^T W h_s``) when the
  Bidirectional encoder's outputs are ``2 * units`` wide.
- ``output_dropout`` -> ``logits`` (Dense ``target_vocab_size``, float32).

Padding: the source mask flows from ``source_embedding`` through the encoder into the
attention, so extra source padding changes nothing. Target padding is excluded from loss
and metrics by the sample weights of :func:`seq2seq_training_pairs` (the logits also carry
the ``target_in`` mask, which marks the same positions).

>>> model = build_seq2seq(source_vocab_size=30, target_vocab_size=20, source_length=12,
...                       target_length=8)
>>> model.output_shape  # any batch, any target length (up to target_length in the records)
(None, None, 20)
"""

from __future__ import annotations

import numbers

import keras
import tensorflow as tf
from keras import ops

from seqbeam.text.vocabulary import PAD_ID, RESERVED_TOKENS

SOURCE = "source"
TARGET_IN = "target_in"
# The recurrent cells of the encoder and the decoder: an LSTM's state is [h, c], a GRU's [h].
_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
_SCORES = ("dot", "general")


@keras.saving.register_keras_serializable(package="seqbeam")
class LuongAttention(keras.layers.Layer):
    """Multiplicative (Luong) attention: ``(context, weights)`` of queries over a memory.

    ``query`` ``[batch, T, Dq]`` (decoder outputs), ``value`` ``[batch, S, Dv]`` (encoder
    outputs). ``score="dot"`` scores ``q . v`` (needs ``Dq == Dv``, no weights);
    ``score="general"`` scores ``q^T W v`` with a learned ``W`` ``[Dv, Dq]``. Positions where
    ``value_mask`` is False (source padding) get a weight of exactly 0; in a Keras graph the
    mask is taken from ``value``'s Keras mask, as propagated by the encoder. Returns
    ``context`` ``[batch, T, Dv]`` (the weighted sum of the values) and ``weights``
    ``[batch, T, S]`` (rows sum to 1, kept for attention heatmaps). The context carries the
    query's mask; the weights carry none.
    """

    def __init__(self, score: str = "dot", **kwargs):
        super().__init__(**kwargs)
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        self.score = score
        self.supports_masking = True

    def build(self, query_shape, value_shape):
        if self.score == "general":
            self.kernel = self.add_weight(name="kernel", shape=(value_shape[-1], query_shape[-1]),
                                          initializer="glorot_uniform")
        elif query_shape[-1] != value_shape[-1]:
            raise ValueError(f"dot attention needs queries and values of the same width, got "
                             f"{query_shape[-1]} and {value_shape[-1]}: use score='general'")

    def call(self, query, value, query_mask=None, value_mask=None):
        keys = value if self.score == "dot" else ops.matmul(value, self.kernel)  # [batch, S, Dq]
        scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))  # [batch, T, S]
        if value_mask is not None:
            # A large finite negative, not -inf: an all-padding row stays NaN-free.
            big = 65000.0 if scores.dtype == "float16" else 1e9
            scores = ops.where(ops.expand_dims(ops.cast(value_mask, "bool"), axis=1), scores,
                               ops.cast(-big, scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        return ops.matmul(weights, value), weights

    def step_keys(self, value):
        """The keys of ``value`` ``[batch, S, Dv]`` for :meth:`attend_step`, transposed: ``[batch, Dq, S]``.

        A decoder that attends one query at a time computes them once, not at every step.
        """
        keys = value if self.score == "dot" else ops.matmul(value, self.kernel)
        return ops.transpose(keys, (0, 2, 1))

    def attend_step(self, query, keys, value, value_mask):
        """``(context [batch, Dv], weights [batch, S])`` of one query ``[batch, Dq]``: :meth:`call`'s
        arithmetic on a single decoder step, with the keys of :meth:`step_keys`."""
        scores = ops.matmul(ops.expand_dims(query, 1), keys)  # [batch, 1, S]
        big = 65000.0 if scores.dtype == "float16" else 1e9
        scores = ops.where(ops.expand_dims(ops.cast(value_mask, "bool"), axis=1), scores, ops.cast(-big, scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        return ops.matmul(weights, value)[:, 0, :], weights[:, 0, :]

    def compute_output_shape(self, query_shape, value_shape):
        return (tuple(query_shape[:-1]) + (value_shape[-1],),
                tuple(query_shape[:-1]) + (value_shape[1],))

    def compute_mask(self, query, previous_mask=None):
        return [previous_mask, None]

    def get_config(self):
        return {**super().get_config(), "score": self.score}


def build_seq2seq(
    *,
    source_vocab_size: int,
    target_vocab_size: int,
    source_length: int,
    target_length: int,
    embedding_dim: int = 64,
    units: int = 128,
    bidirectional: bool = False,
    attention: bool = True,
    dropout: float = 0.0,
    cell: str = "lstm",
    name: str = "seq2seq",
) -> keras.Model:
    """The teacher-forced encoder-decoder: ``(source, target_in)`` -> next-token logits.

    Returns an uncompiled functional model (see :func:`compile_seq2seq`) whose inputs are
    named ``source`` ``[batch, source_length]`` and ``target_in`` ``[batch, target_length]``
    (int64, 0-padded; a batch may be shorter) and whose output is float32 logits ``[batch,
    target_length, target_vocab_size]``. ``dropout`` is applied to both embeddings and before ``logits``
    (``Dropout`` layers, so the recurrent kernels keep their fast paths). ``cell``: ``"lstm"``
    or ``"gru"``. The layers and why they are laid out so are in the module docstring.
    """
    for argument, value in (("source_vocab_size", source_vocab_size), ("target_vocab_size", target_vocab_size)):
        _check_positive_int(argument, value)
        if value <= len(RESERVED_TOKENS):
            raise ValueError(f"{argument} must exceed the {len(RESERVED_TOKENS)} reserved ids, got {value!r}")
    for argument, value in (("source_length", source_length), ("target_length", target_length),
                            ("embedding_dim", embedding_dim), ("units", units)):
        _check_positive_int(argument, value)
    for argument, value in (("bidirectional", bidirectional), ("attention", attention)):
        if not isinstance(value, bool):
            raise ValueError(f"{argument} must be True or False, got {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
    rnn = _CELLS[cell]
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")

    # int64 as in the TFRecords. Any length: batches of short rows may be cut short (models/inputs.py,
    # length_window); source_length and target_length are the longest the records hold.
    source = keras.Input(shape=(None,), dtype="int64", name=SOURCE)
    target_in = keras.Input(shape=(None,), dtype="int64", name=TARGET_IN)

    x = keras.layers.Embedding(source_vocab_size, embedding_dim, mask_zero=True, name="source_embedding")(source)
    x = keras.layers.Dropout(dropout, name="source_dropout")(x)
    if bidirectional:
        memory, *states = keras.layers.Bidirectional(
            rnn(units, return_sequences=True, return_state=True), merge_mode="concat", name="encoder")(x)
        forward, backward = states[: len(states) // 2], states[len(states) // 2:]
        h = keras.layers.Concatenate(name="encoder_state_h")([forward[0], backward[0]])
        state = [keras.layers.Dense(units, activation="tanh", name="bridge_h")(h)]
        if cell == "lstm":
            c = keras.layers.Concatenate(name="encoder_state_c")([forward[1], backward[1]])
            state.append(keras.layers.Dense(units, name="bridge_c")(c))
    else:
        memory, *state = rnn(units, return_sequences=True, return_state=True, name="encoder")(x)

    y = keras.layers.Embedding(target_vocab_size, embedding_dim, mask_zero=True, name="target_embedding")(target_in)
    y = keras.layers.Dropout(dropout, name="target_dropout")(y)
    y, *_ = rnn(units, return_sequences=True, return_state=True, name="decoder")(y, initial_state=state)
    if attention:
        context, _ = LuongAttention(score="general" if bidirectional else "dot", name="attention")(y, memory)
        y = keras.layers.Concatenate(name="attention_concat")([y, context])
        y = keras.layers.Dense(units, activation="tanh", name="attention_combine")(y)
    y = keras.layers.Dropout(dropout, name="output_dropout")(y)
    logits = keras.layers.Dense(target_vocab_size, dtype="float32", name="logits")(y)
    return keras.Model(inputs=[source, target_in], outputs=logits, name=name)


def attention_weights_model(model: keras.Model) -> keras.Model:
    """A model sharing ``model``'s layers: ``(source, target_in)`` -> attention weights ``[batch, T, S]``.

    Row ``t`` says where the decoder looked in the source when predicting ``target_out[t]``
    (teacher forced: feed ``<start>`` + a decoded sequence to draw the heatmap of a
    translation). Weights on source padding are exactly 0.
    """
    try:
        layer = model.get_layer("attention")
    except ValueError:
        raise ValueError(f"model {model.name!r} has no 'attention' layer (built with attention=False?)") from None
    return keras.Model(inputs=model.inputs, outputs=layer.output[1], name=f"{model.name}_attention")


def compile_seq2seq(model: keras.Model, *, learning_rate: float = 1e-3, clipnorm: float | None = None) -> keras.Model:
    """Compiles ``model`` in place: Adam (optionally clipped), cross-entropy on logits.

    Padding is weighted out by the caller's sample weights (:func:`seq2seq_training_pairs`),
    so accuracy is a *weighted* metric named ``accuracy``: the share of real target tokens
    (``<end>`` included) predicted right. Returns the model, for chaining.
    """
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule) and (
            isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) or not learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number or a schedule, got {learning_rate!r}")
    if clipnorm is not None and (isinstance(clipnorm, bool) or not isinstance(clipnorm, numbers.Real)
                                 or not clipnorm > 0):
        raise ValueError(f"clipnorm must be None or a positive number, got {clipnorm!r}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def seq2seq_training_pairs(features: dict) -> tuple[tuple[tf.Tensor, tf.Tensor], tf.Tensor, tf.Tensor]:
    """``((source, target_in), target_out, weights)`` from seq2seq records; padding weighs 0.

    Usable in ``tf.data.Dataset.map`` over parsed records or on a dict of arrays.
    """
    target_out = tf.convert_to_tensor(features["target_out"])
    weights = tf.cast(tf.not_equal(target_out, PAD_ID), tf.float32)
    return (tf.convert_to_tensor(features[SOURCE]), tf.convert_to_tensor(features[TARGET_IN])), target_out, weights


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
