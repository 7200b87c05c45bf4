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
import tensorflow as tf
import tensorflow_text as tf_text

from seqbeam.pipelines.config import Config
from seqbeam.transforms.records import REJECTED, SPLITS, STAGE_ENCODE, STATS, RowBatch, rejection
from seqbeam.transforms.tokenizer import TextTokenizer
from seqbeam.transforms.vocabulary import END_ID, START_ID, Vocabulary


class TokenIds(tf.Module):
    """Raw strings -> ragged token ids: the task tokenizer followed by a vocabulary lookup."""

    def __init__(self, tokenizer: TextTokenizer, vocabulary: Vocabulary):
        super().__init__()
        self.tokenizer = tokenizer
        self.table = vocabulary.lookup_table()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts: tf.Tensor) -> tf.RaggedTensor:
        return tf.ragged.map_flat_values(self.table.lookup, self.tokenizer.tokenize(texts))


def pad(ids: tf.RaggedTensor, length: int) -> tf.Tensor:
    """Ids truncated and zero-padded to ``length`` columns (tensorflow-text's pad_model_inputs)."""
    padded, _ = tf_text.pad_model_inputs(ids, max_seq_length=length, pad_value=0)
    return padded


def shift_for_teacher_forcing(ids: tf.RaggedTensor, length: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(``<start>`` + ids, ids + ``<end>``), each cut to ``length`` so both keep their marker."""
    ids = ids[:, : length - 1]
    batch = ids.nrows()
    start = tf.fill([batch, 1], tf.constant(START_ID, tf.int64))
    end = tf.fill([batch, 1], tf.constant(END_ID, tf.int64))
    return pad(tf.concat([start, ids], axis=1), length), pad(tf.concat([ids, end], axis=1), length)


class FeatureEncoder(tf.Module):
    """Raw texts (and targets) -> the padded int64 features of a task, in one graph call.

    Returns the features of DESIGN.md (without ``id``) plus ``n_source`` / ``n_target``,
    the untruncated token counts that decide truncation and rejection.
    """

    def __init__(self, kind: str, tokenizer: TextTokenizer, source_vocab: Vocabulary,
                 target_vocab: Optional[Vocabulary], max_length: int, max_target_length: int):
        super().__init__()
        self.kind = kind
        self.source_ids = TokenIds(tokenizer, source_vocab)
        self.target_ids = TokenIds(tokenizer, target_vocab) if kind == "seq2seq" else None
        self.max_length = max_length
        self.max_target_length = max_target_length

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)])
    def __call__(self, texts: tf.Tensor, targets: tf.Tensor) -> dict[str, tf.Tensor]:
        source = self.source_ids(texts)
        n_source = source.row_lengths()
        if self.kind == "seq2seq":
            target = self.target_ids(targets)
            target_in, target_out = shift_for_teacher_forcing(target, self.max_target_length)
            return {"source": pad(source, self.max_length), "target_in": target_in, "target_out": target_out,
                    "n_source": n_source, "n_target": target.row_lengths()}
        if self.kind == "lm":
            tokens, shifted = shift_for_teacher_forcing(source, self.max_length)
            return {"tokens": tokens, "targets": shifted, "n_source": n_source, "n_target": n_source}
        return {"tokens": pad(source, self.max_length), "n_source": n_source, "n_target": n_source}


def int_example(features: dict[str, Sequence[int]], row_id: str) -> bytes:
    """A serialized Example with int64 list features and the row id as bytes."""
    example = tf.train.Example()
    feature = example.features.feature
    for name, values in features.items():
        feature[name].int64_list.value.extend(values)
    feature["id"].bytes_list.value.append(row_id.encode("utf-8"))
    return example.SerializeToString()


class EncodeBatches(beam.DoFn):
    """Encodes a batch of validated rows into serialized Examples grouped by split.

    Main output: ``(split, [serialized Example, ...])``, one per split present in the
    batch, so records travel to the sink in batches. Tagged outputs: ``rejected`` (rows with
    no token, or too long when overflow is 'reject') and ``stats`` (per-batch counts of
    rows written per split and of truncations, summed into metadata.json).
    """

    def __init__(self, config: Config):
        self._kind = config.task.kind
        self._tokenizer_config = config.preprocess.tokenizer
        self._max_length = config.preprocess.max_length
        self._max_target_length = config.preprocess.max_target_length
        self._reject_overflow = config.preprocess.overflow == "reject"
        self._encoders: dict[tuple[str, str], FeatureEncoder] = {}
        self._rejected = beam.metrics.Metrics.counter("encode", "rows_rejected")
        self._truncated = beam.metrics.Metrics.counter("encode", "rows_truncated")
        self._written = beam.metrics.Metrics.counter("encode", "rows_written")

    def setup(self):
        # Built on the worker: importing the tokenizer module registers the tensorflow-text ops.
        self._tokenizer = TextTokenizer.from_config(self._tokenizer_config)

    def _encoder(self, source_vocab: Vocabulary, target_vocab: Optional[Vocabulary]) -> FeatureEncoder:
        key = (source_vocab.fingerprint, target_vocab.fingerprint if target_vocab else "")
        if key not in self._encoders:
            self._encoders[key] = FeatureEncoder(self._kind, self._tokenizer, source_vocab, target_vocab,
                                                 self._max_length, self._max_target_length)
        return self._encoders[key]

    def process(self, batch: RowBatch, source_vocab: Vocabulary, target_vocab: Optional[Vocabulary] = None):
        stats = collections.Counter()
        records = {split: [] for split in SPLITS}
        targets = batch.targets if self._kind == "seq2seq" else [""] * len(batch)
        encoded = self._encoder(source_vocab, target_vocab)(tf.constant(batch.texts), tf.constant(targets))
        arrays = {name: tensor.numpy().tolist() for name, tensor in encoded.items()}
        source_lengths, target_lengths = arrays.pop("n_source"), arrays.pop("n_target")
        if self._kind == "seq2seq":
            source_padded, target_in, target_out = arrays["source"], arrays["target_in"], arrays["target_out"]
        elif self._kind == "lm":
            tokens, targets = arrays["tokens"], arrays["targets"]
        else:
            tokens = arrays["tokens"]

        for i, row in enumerate(batch.rows()):
            n_source, n_target = source_lengths[i], target_lengths[i]
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
            records[row.split].append(int_example(features, row.id))
        for split, serialized in records.items():
            if serialized:
                stats[split] += len(serialized)
                self._written.inc(len(serialized))
                yield split, serialized
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
