"""Batches of rows -> padded id sequences -> serialized ``tf.train.Example`` records.

Text becomes ids through :class:`TokenIds` (tokenizer + vocabulary table), the graph the
exported models embed too. Feature layouts follow DESIGN.md, all int64, padded with 0:

- classifier: ``tokens``, ``length``, ``label``, ``id``
- seq2seq: ``source``, ``source_length``, ``target_in`` (``<start>`` + target),
  ``target_out`` (target + ``<end>``), ``target_length``, ``id``
- lm: ``tokens`` (``<start>`` + text), ``targets`` (text + ``<end>``), ``length``, ``id``
"""

from __future__ import annotations

import collections
from typing import Optional, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from seqbeam.pipelines.config import Config
from seqbeam.transforms.records import REJECTED, STAGE_ENCODE, Row, rejection
from seqbeam.transforms.tokenizer import TextTokenizer
from seqbeam.transforms.vocabulary import END_ID, START_ID, Vocabulary

STATS = "stats"


class TokenIds(tf.Module):
    """Raw strings -> ragged token ids: the task tokenizer followed by a vocabulary lookup."""

    def __init__(self, tokenizer: TextTokenizer, vocabulary: Vocabulary):
        super().__init__()
        self.tokenizer = tokenizer
        self.table = vocabulary.lookup_table()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts: tf.Tensor) -> tf.RaggedTensor:
        return tf.ragged.map_flat_values(self.table.lookup, self.tokenizer.tokenize(texts))


def pad(ids: tf.RaggedTensor, length: int) -> np.ndarray:
    """Ids truncated and zero-padded to ``length`` columns (tensorflow-text's pad_model_inputs)."""
    padded, _ = tf_text.pad_model_inputs(ids, max_seq_length=length, pad_value=0)
    return padded.numpy()


def shift_for_teacher_forcing(ids: tf.RaggedTensor, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(``<start>`` + ids, ids + ``<end>``), each cut to ``length`` so both keep their marker."""
    ids = ids[:, : length - 1]
    batch = ids.nrows()
    start = tf.fill([batch, 1], tf.constant(START_ID, tf.int64))
    end = tf.fill([batch, 1], tf.constant(END_ID, tf.int64))
    inputs = tf.concat([start, ids], axis=1)
    outputs = tf.concat([ids, end], axis=1)
    return pad(inputs, length), pad(outputs, length)


def int_example(features: dict[str, Sequence[int]], row_id: str) -> bytes:
    """A serialized Example with int64 list features and the row id as bytes."""
    example = tf.train.Example()
    feature = example.features.feature
    for name, values in features.items():
        feature[name].int64_list.value.extend(values)
    feature["id"].bytes_list.value.append(row_id.encode("utf-8"))
    return example.SerializeToString()


class EncodeBatches(beam.DoFn):
    """Encodes a batch of validated rows into serialized Examples tagged by split.

    Main output: ``(split, serialized_example)``. Tagged outputs: ``rejected`` (rows with
    no token, or too long when overflow is 'reject') and ``stats`` (per-batch counts of
    rows written per split and of truncations, summed into metadata.json).
    """

    def __init__(self, config: Config):
        self._kind = config.task.kind
        self._tokenizer_config = config.preprocess.tokenizer
        self._max_length = config.preprocess.max_length
        self._max_target_length = config.preprocess.max_target_length
        self._reject_overflow = config.preprocess.overflow == "reject"
        self._encoders: dict[tuple[str, str], TokenIds] = {}
        self._rejected = beam.metrics.Metrics.counter("encode", "rows_rejected")
        self._truncated = beam.metrics.Metrics.counter("encode", "rows_truncated")
        self._written = beam.metrics.Metrics.counter("encode", "rows_written")

    def setup(self):
        # Built on the worker: importing the tokenizer module registers the tensorflow-text ops.
        self._tokenizer = TextTokenizer.from_config(self._tokenizer_config)

    def _encoder(self, vocabulary: Vocabulary) -> TokenIds:
        key = vocabulary.fingerprint
        if key not in self._encoders:
            self._encoders[key] = TokenIds(self._tokenizer, vocabulary)
        return self._encoders[key]

    def process(self, rows: list[Row], source_vocab: Vocabulary, target_vocab: Optional[Vocabulary] = None):
        stats = collections.Counter()
        source = self._encoder(source_vocab)(tf.constant([r.text for r in rows]))
        source_lengths = source.row_lengths().numpy()
        if self._kind == "seq2seq":
            target = self._encoder(target_vocab)(tf.constant([r.target for r in rows]))
            target_lengths = target.row_lengths().numpy()
            source_padded = pad(source, self._max_length).tolist()
            target_in, target_out = (a.tolist() for a in shift_for_teacher_forcing(target, self._max_target_length))
        elif self._kind == "lm":
            target_lengths = source_lengths
            tokens, targets = (a.tolist() for a in shift_for_teacher_forcing(source, self._max_length))
        else:
            target_lengths = source_lengths
            tokens = pad(source, self._max_length).tolist()

        for i, row in enumerate(rows):
            n_source, n_target = int(source_lengths[i]), int(target_lengths[i])
            problem = self._problem(n_source, n_target)
            if problem:
                self._rejected.inc()
                yield beam.pvalue.TaggedOutput(REJECTED, rejection(row.id, row.raw(), STAGE_ENCODE, *problem))
                continue
            if self._kind == "seq2seq":
                features = {
                    "source": source_padded[i],
                    "source_length": [min(n_source, self._max_length)],
                    "target_in": target_in[i],
                    "target_out": target_out[i],
                    "target_length": [min(n_target + 1, self._max_target_length)],
                }
                truncated = n_source > self._max_length or n_target + 1 > self._max_target_length
            elif self._kind == "lm":
                features = {"tokens": tokens[i], "targets": targets[i],
                            "length": [min(n_source + 1, self._max_length)]}
                truncated = n_source + 1 > self._max_length
            else:
                features = {"tokens": tokens[i], "length": [min(n_source, self._max_length)], "label": [row.label]}
                truncated = n_source > self._max_length
            if truncated:
                stats["truncated"] += 1
                self._truncated.inc()
            stats[row.split] += 1
            self._written.inc()
            yield row.split, int_example(features, row.id)
        yield beam.pvalue.TaggedOutput(STATS, dict(stats))

    def _problem(self, n_source: int, n_target: int) -> Optional[tuple[str, str]]:
        """(code, detail) when a row cannot be encoded as configured."""
        if n_source == 0:
            return "no_tokens", "the text has no token after normalization"
        if self._kind == "seq2seq" and n_target == 0:
            return "no_tokens", "the target has no token after normalization"
        if not self._reject_overflow:
            return None
        if self._kind == "lm" and n_source + 1 > self._max_length:
            return "too_many_tokens", f"{n_source} tokens + <start> > max_length {self._max_length}"
        if self._kind != "lm" and n_source > self._max_length:
            return "too_many_tokens", f"{n_source} tokens > max_length {self._max_length}"
        if self._kind == "seq2seq" and n_target + 1 > self._max_target_length:
            return "too_many_tokens", (
                f"target of {n_target} tokens + <end> > max_target_length {self._max_target_length}"
            )
        return None
