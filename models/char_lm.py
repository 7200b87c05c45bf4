"""Char-level LSTM language model (new dinosaur-like names) and its sampler.

The model reads ``<start>`` + characters and predicts the next character at every step
(teacher forcing on the LM records: ``tokens`` -> ``targets``). Sampling runs inside the
graph for a whole batch of prompts: temperature, optional top-k, stop at ``<end>`` or at
the maximum length. Gradient clipping is the optimizer's ``clipnorm`` (set by the caller
from the task config): char LMs over long names are the classic exploding-gradient case.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from seqbeam.text.vocabulary import END_ID, PAD_ID, START_ID


def build_char_lm(*, vocab_size: int, max_length: int, embedding_dim: int = 32, units: int = 128,
                  name: str = "char_lm") -> keras.Model:
    """Tokens ``[batch, max_length]`` (``<start>`` + chars, 0-padded) -> next-char logits."""
    for argument, value in (("vocab_size", vocab_size), ("max_length", max_length),
                            ("embedding_dim", embedding_dim), ("units", units)):
        if value < 1:
            raise ValueError(f"{argument} must be positive, got {value}")
    tokens = keras.Input(shape=(max_length,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(tokens)
    states = keras.layers.LSTM(units, return_sequences=True, name="lstm")(embedded)
    logits = keras.layers.Dense(vocab_size, name="logits")(states)
    return keras.Model(tokens, logits, name=name)


def compile_char_lm(model: keras.Model, *, learning_rate: float = 1e-2, clipnorm: float = 5.0) -> keras.Model:
    """Adam with gradient-norm clipping, cross-entropy on logits (padding weighted out by the caller)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def lm_training_pairs(features: dict) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(inputs, targets, weights) from LM records: padding positions weigh 0 in loss and metrics."""
    targets = features["targets"]
    return features["tokens"], targets, tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)


class CharSampler(tf.Module):
    """Samples continuations of a batch of prompt ids with the trained model's layers.

    Layers are shared with the model (not copied), so the sampler always uses its weights.
    """

    def __init__(self, model: keras.Model, max_length: int):
        super().__init__()
        self.embedding = model.get_layer("embedding")
        self.lstm = model.get_layer("lstm")
        self.logits = model.get_layer("logits")
        self.units = self.lstm.units
        self.max_length = max_length

    def _step(self, ids: tf.Tensor, state: list[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Logits of the next char after ``ids`` ([batch]) and the new LSTM state."""
        embedded = self.embedding(ids[:, None])
        output, new_state = self.lstm.cell(embedded[:, 0, :], state)
        return self.logits(output), list(new_state)

    @tf.function(input_signature=[
        tf.RaggedTensorSpec([None, None], tf.int64),
        tf.TensorSpec([], tf.float32),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([2], tf.int32),
    ])
    def sample(self, prompts: tf.RaggedTensor, temperature: tf.Tensor, top_k: tf.Tensor,
               seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(generated ids ``[batch, max_length]`` after the prompt, 0-padded; their log-probability).

        ``prompts`` are char ids without ``<start>`` (empty = a fresh name); ``top_k`` 0
        samples from the whole distribution. Stops at ``<end>`` (not included) or max_length.
        """
        batch = prompts.nrows()
        state = [tf.zeros([batch, self.units]), tf.zeros([batch, self.units])]
        # Feed <start> + prompt; the logits after the last real prompt char start the sampling.
        fed = tf.concat([tf.fill([batch, 1], tf.constant(START_ID, tf.int64)), prompts], axis=1)
        padded = fed.to_tensor(PAD_ID)
        last = fed.row_lengths() - 1
        logits = tf.zeros([batch, self.logits.units])
        for t in tf.range(tf.shape(padded)[1]):
            step_logits, new_state = self._step(padded[:, t], state)
            active = tf.less_equal(tf.cast(t, tf.int64), last)[:, None]
            state = [tf.where(active, new, old) for new, old in zip(new_state, state)]
            logits = tf.where(tf.equal(tf.cast(t, tf.int64), last)[:, None], step_logits, logits)

        generated = tf.TensorArray(tf.int64, size=self.max_length)
        log_prob = tf.zeros([batch])
        done = tf.zeros([batch], tf.bool)
        for t in tf.range(self.max_length):
            scaled = logits / tf.maximum(temperature, 1e-6)
            scaled = tf.cond(top_k > 0, lambda: _keep_top_k(scaled, top_k), lambda: scaled)
            # <pad> and <start> are never generated.
            scaled = scaled + tf.one_hot(PAD_ID, self.logits.units, on_value=-1e9) + tf.one_hot(
                START_ID, self.logits.units, on_value=-1e9)
            step_seed = tf.stack([seed[0], seed[1] + t])
            ids = tf.random.stateless_categorical(scaled, 1, seed=step_seed, dtype=tf.int64)[:, 0]
            step_log_prob = tf.gather(tf.nn.log_softmax(scaled), ids, batch_dims=1)
            ended = tf.logical_or(done, tf.equal(ids, END_ID))
            log_prob += tf.where(done, 0.0, step_log_prob)
            generated = generated.write(t, tf.where(ended, tf.constant(PAD_ID, tf.int64), ids))
            done = ended
            logits, state = self._step(ids, state)
        return tf.transpose(generated.stack()), log_prob


def _keep_top_k(logits: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """Logits with everything below the k-th largest of each row set to -inf."""
    k = tf.minimum(k, tf.shape(logits)[-1])
    threshold = tf.math.top_k(logits, k=k).values[:, -1:]
    return tf.where(logits < threshold, tf.fill(tf.shape(logits), -1e9), logits)
