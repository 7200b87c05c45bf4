"""In-graph batched decoding of a trained seq2seq model: greedy and beam search.

:class:`Seq2SeqDecoder` is a ``tf.Module`` whose methods are ``tf.function``s with input
signatures, so it can be tracked by an export (``keras.export.ExportArchive`` or
``tf.saved_model.save``) and served without Python. It holds no weights of its own: it
takes the layers of the model of :func:`seqbeam.models.seq2seq.build_seq2seq` by name and
runs the decoder one step at a time with them, mirroring training exactly:

- the encoder reads the 0-padded source with the mask ``source != <pad>`` (what the
  ``mask_zero`` embedding gives it in training), and the attention ignores the same positions;
- the first decoder input is ``<start>``, then each step feeds back the token chosen;
- a step is ``target_embedding`` -> ``decoder`` cell -> [``attention`` -> ``attention_concat``
  -> ``attention_combine``] -> ``logits``; the dropout layers are identities at inference
  and are skipped. The attention keys (the encoder outputs, transposed; times ``W`` for the
  ``general`` score) are computed once per decode, not at every step
  (``LuongAttention.step_keys`` / ``attend_step``: the layer's own arithmetic).

Scores are the model's own log-probabilities: a full ``log_softmax`` over the vocabulary,
after which ``<pad>`` and ``<start>`` are excluded from the choice (never generated) without
renormalising the rest. ``<end>`` stops a hypothesis: its log-probability counts, the token
itself is not written to the ids, which are 0-padded to ``max_length``. A hypothesis that
reaches ``max_length`` without ``<end>`` stops there.
"""

from __future__ import annotations

import numbers

import keras
import tensorflow as tf

from seqbeam.text.vocabulary import END_ID, PAD_ID, START_ID


class Seq2SeqDecoder(tf.Module):
    """Greedy and beam-search decoding of batches of source ids, with the model's layers.

    ``model`` is a model built by ``build_seq2seq`` (any encoder kind and cell, with or
    without attention); ``max_length`` is the most tokens generated per example, ``<end>`` included
    (the ``target_length`` of the training records is the natural choice). Layers are shared,
    not copied: the decoder always uses the model's current weights. Keep a reference to
    the decoder while calling it: a ``tf.function`` method holds its module only weakly, so
    ``Seq2SeqDecoder(model, n).greedy(x)`` on a temporary fails.

    Export: track the model (or this module) in a ``keras.export.ExportArchive`` and add
    ``greedy`` / ``beam_search`` as endpoints, or ``tf.saved_model.save`` a module holding it.
    """

    def __init__(self, model: keras.Model, max_length: int, name: str | None = None):
        super().__init__(name=name)
        if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length <= 0:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        try:
            self.source_embedding = model.get_layer("source_embedding")
            self.encoder = model.get_layer("encoder")
            self.target_embedding = model.get_layer("target_embedding")
            self.decoder = model.get_layer("decoder")
            self.logits = model.get_layer("logits")
        except ValueError as error:
            raise ValueError(f"model {model.name!r} is not a build_seq2seq model: {error}") from None
        self.bidirectional = isinstance(self.encoder, keras.layers.Bidirectional)
        # An LSTM's state is [h, c], a GRU's [h].
        self.lstm = isinstance(self.encoder.forward_layer if self.bidirectional else self.encoder, keras.layers.LSTM)
        if self.bidirectional:
            parts = ("h", "c") if self.lstm else ("h",)
            self.encoder_state = [model.get_layer(f"encoder_state_{part}") for part in parts]
            self.bridge = [model.get_layer(f"bridge_{part}") for part in parts]
        names = {layer.name for layer in model.layers}
        self.has_attention = "attention" in names
        if self.has_attention:
            self.attention = model.get_layer("attention")
            self.attention_concat = model.get_layer("attention_concat")
            self.attention_combine = model.get_layer("attention_combine")
        self.max_length = int(max_length)
        self.vocab_size = int(self.logits.units)

    def _encode(self, source: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor], tf.Tensor]:
        """(encoder outputs ``[B, S, D]``, decoder initial state (LSTM ``[h, c]``, GRU ``[h]``),
        source mask ``[B, S]``)."""
        mask = tf.not_equal(source, tf.constant(PAD_ID, source.dtype))
        embedded = self.source_embedding(source)
        memory, *states = self.encoder(embedded, mask=mask)
        if self.bidirectional:
            forward, backward = states[: len(states) // 2], states[len(states) // 2:]
            states = [bridge(join([f, b])) for bridge, join, f, b in zip(self.bridge, self.encoder_state, forward,
                                                                            backward)]
        return memory, list(states), mask

    def _keys(self, memory: tf.Tensor) -> tf.Tensor:
        """The attention keys of the encoder outputs, computed once per decode (none without attention)."""
        return self.attention.step_keys(memory) if self.has_attention else tf.zeros([0])

    def _step(self, ids: tf.Tensor, state: list[tf.Tensor], memory: tf.Tensor, keys: tf.Tensor,
              mask: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor], tf.Tensor]:
        """Log-probabilities ``[N, V]`` of the token after ``ids`` ``[N]`` (pad/start at -inf), new state,
        and the step's attention weights over the source ``[N, S]`` (zeros without attention)."""
        # tf.identity drops the Keras mask that the embedding attaches (the cell takes none).
        embedded = tf.identity(self.target_embedding(ids))
        output, state = self.decoder.cell(embedded, state)
        if self.has_attention:
            context, weights = self.attention.attend_step(output, keys, memory, mask)
            output = self.attention_combine(self.attention_concat([output, context]))
            weights = tf.cast(weights, tf.float32)
        else:
            weights = tf.zeros(tf.shape(mask), tf.float32)
        log_probs = tf.nn.log_softmax(tf.cast(self.logits(output), tf.float32))
        token = tf.range(self.vocab_size)
        never = tf.logical_or(tf.equal(token, PAD_ID), tf.equal(token, START_ID))
        return tf.where(never[None, :], tf.constant(-float("inf")), log_probs), list(state), weights

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64, name="source")])
    def greedy(self, source: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(ids ``int64 [B, max_length]``, log-probability ``float32 [B]``) of the greedy decode.

        Each step takes the most probable token (ties: the lowest id).
        """
        ids, log_prob, _ = self._greedy(source, keep_attention=False)
        return ids, log_prob

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64, name="source")])
    def greedy_attention(self, source: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """:meth:`greedy` plus where the decoder looked: weights ``float32 [B, max_length, S]``.

        Row ``t`` is the attention over the source when step ``t`` chose its token (the
        ``<end>`` step included; rows after it are 0), for attention heatmaps of a
        translation. Zeros for a model without attention.
        """
        return self._greedy(source, keep_attention=True)

    def _greedy(self, source: tf.Tensor, keep_attention: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        batch = tf.shape(source)[0]
        memory, state, mask = self._encode(source)
        keys = self._keys(memory)
        ids = tf.fill([batch], tf.constant(START_ID, tf.int64))
        log_prob = tf.zeros([batch], tf.float32)
        done = tf.zeros([batch], tf.bool)
        generated = tf.zeros([batch, self.max_length], tf.int64)
        attention = tf.zeros([batch, self.max_length if keep_attention else 0, tf.shape(source)[1]], tf.float32)
        columns = tf.range(self.max_length)
        for t in tf.range(self.max_length):
            if tf.reduce_all(done):
                break
            step_log_probs, state, weights = self._step(ids, state, memory, keys, mask)
            if keep_attention:
                weights = tf.where(done[:, None], 0.0, weights)
                attention = tf.where(tf.equal(columns, t)[None, :, None], weights[:, None, :], attention)
            # The argmax of the running total (the same as that of the step's log-probabilities)
            # is exactly the float computation beam search does, so width 1 gives the same bits.
            candidates = log_prob[:, None] + step_log_probs
            ids = tf.argmax(candidates, axis=-1, output_type=tf.int64)
            log_prob = tf.where(done, log_prob, tf.gather(candidates, ids, batch_dims=1))
            done = tf.logical_or(done, tf.equal(ids, END_ID))
            written = tf.where(done, tf.constant(PAD_ID, tf.int64), ids)
            generated = tf.where(tf.equal(columns, t)[None, :], written[:, None], generated)
        return generated, log_prob, attention

    @tf.function(input_signature=[
        tf.TensorSpec([None, None], tf.int64, name="source"),
        tf.TensorSpec([], tf.int32, name="beam_width"),
        tf.TensorSpec([], tf.float32, name="length_penalty"),
    ])
    def beam_search(self, source: tf.Tensor, beam_width: tf.Tensor,
                    length_penalty: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(ids ``int64 [B, max_length]``, score ``float32 [B]``) of the best of ``beam_width`` beams.

        A hypothesis of ``n`` tokens (``<end>`` counted) with log-probability ``L`` scores
        ``L / ((5 + n) / 6) ** length_penalty`` (GNMT; ``length_penalty`` 0 gives the plain sum,
        larger values favour longer outputs). The beam is the ``beam_width`` best hypotheses by
        that score; a finished one (``<end>`` generated) stays in the beam with its score
        unchanged and competes with the live ones at every step, and the search stops when
        every beam of every example has finished or at ``max_length``. With ``beam_width`` 1
        this is exactly :meth:`greedy` (same ids, and with ``length_penalty`` 0 the same score).
        """
        # The checks must gate the values: an assert only orders itself among stateful ops.
        with tf.control_dependencies([
            tf.debugging.assert_positive(beam_width, message="beam_width must be positive"),
            tf.debugging.assert_non_negative(length_penalty, message="length_penalty must be >= 0"),
        ]):
            k, length_penalty = tf.identity(beam_width), tf.identity(length_penalty)
        batch, vocab = tf.shape(source)[0], self.vocab_size
        memory, state, mask = self._encode(source)
        # Beam j of example b is row b * k + j.
        memory = tf.repeat(memory, k, axis=0)
        keys = self._keys(memory)
        mask = tf.repeat(mask, k, axis=0)
        state = [tf.repeat(s, k, axis=0) for s in state]
        rows = tf.range(batch)[:, None] * k

        # Only beam 0 is live at first: the others would duplicate its expansions.
        scores = tf.where(tf.equal(tf.range(k), 0)[None, :], tf.zeros([batch, k]), tf.constant(-float("inf")))
        lengths = tf.zeros([batch, k], tf.int32)
        finished = tf.zeros([batch, k], tf.bool)
        sequences = tf.zeros([batch, k, self.max_length], tf.int64)
        ids = tf.fill([batch * k], tf.constant(START_ID, tf.int64))
        # A finished beam's only continuation: itself (shown as <pad>), score unchanged.
        stay = tf.where(tf.equal(tf.range(vocab), PAD_ID), 0.0, -float("inf"))
        columns = tf.range(self.max_length)
        for t in tf.range(self.max_length):
            if tf.reduce_all(finished):
                break
            step_log_probs, state, _ = self._step(ids, state, memory, keys, mask)
            step_log_probs = tf.reshape(step_log_probs, [batch, k, vocab])
            candidates = tf.where(finished[:, :, None], scores[:, :, None] + stay, scores[:, :, None] + step_log_probs)
            candidate_lengths = tf.where(finished, lengths, t + 1)
            normalized = candidates / _length_penalty(candidate_lengths, length_penalty)[:, :, None]
            _, best = tf.math.top_k(tf.reshape(normalized, [batch, k * vocab]), k=k)  # ties: lowest index
            parent, tokens = best // vocab, tf.cast(best % vocab, tf.int64)
            scores = tf.gather(tf.reshape(candidates, [batch, k * vocab]), best, batch_dims=1)
            lengths = tf.gather(candidate_lengths, parent, batch_dims=1)
            finished = tf.logical_or(tf.gather(finished, parent, batch_dims=1), tf.equal(tokens, END_ID))
            written = tf.where(finished, tf.constant(PAD_ID, tf.int64), tokens)
            sequences = tf.where(tf.equal(columns, t)[None, None, :], written[:, :, None],
                                 tf.gather(sequences, parent, batch_dims=1))
            state = [tf.gather(s, tf.reshape(parent + rows, [-1])) for s in state]
            ids = tf.reshape(tokens, [-1])
        # top_k keeps the beams sorted by normalized score: beam 0 is the best.
        return sequences[:, 0, :], scores[:, 0] / _length_penalty(lengths[:, 0], length_penalty)


def _length_penalty(lengths: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """GNMT's ``((5 + length) / 6) ** alpha``; exactly 1.0 when ``alpha`` is 0."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)
