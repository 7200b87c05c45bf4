"""Batches of rows -> padded id sequences -> serialized ``tf.train.Example`` records.

Text becomes ids through :class:`TokenIds` (tokenizer + vocabulary table), the graph the
exported models embed too; the table is read from the written vocabulary file, as the
exported models read it, so the side input is the file's path whatever the vocabulary's size. Feature layouts follow DESIGN.md, all int64, padded with 0:

- classifier: ``tokens``, ``length``, ``label``, ``id``
- seq2seq: ``source``, ``source_length``, ``target_in`` (``<start>`` + target),
  ``target_out`` (target + ``<end>``), ``target_length``, ``id``
- lm: ``tokens`` (``<start>`` + text), ``targets`` (text + ``<end>``), ``length``, ``id``
"""

from __future__ import annotations

from typing import Optional

import apache_beam as beam
import numpy as np
import tensorflow as tf

from seqbeam.configs.schema import Config
from seqbeam.transforms.examples import serialize_int_examples
from seqbeam.transforms.records import REJECTED, SPLITS, STAGE_ENCODE, STATS, TOO_MANY_TOKENS, RowBatch, rejection
from seqbeam.text.encoding import TokenIds, pad, shift_for_teacher_forcing
from seqbeam.text.tokenizer import TextTokenizer


class FeatureEncoder(tf.Module):
    """Raw texts (and targets) -> the padded int64 features of a task, in one graph call.

    Returns the features of DESIGN.md (without ``id``) plus ``n_source`` / ``n_target``,
    the untruncated token counts that decide truncation and rejection.
    """

    def __init__(self, kind: str, tokenizer: TextTokenizer, source_vocab_file: str,
                 target_vocab_file: Optional[str], max_length: int, max_target_length: int):
        super().__init__()
        self.kind = kind
        self.source_ids = TokenIds(tokenizer, None, vocab_file=source_vocab_file)
        self.target_ids = TokenIds(tokenizer, None, vocab_file=target_vocab_file) if kind == "seq2seq" else None
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

    def _encoder(self, source_vocab_file: str, target_vocab_file: Optional[str]) -> FeatureEncoder:
        key = (source_vocab_file, target_vocab_file or "")
        if key not in self._encoders:
            self._encoders[key] = FeatureEncoder(self._kind, self._tokenizer, source_vocab_file, target_vocab_file,
                                                 self._max_length, self._max_target_length)
        return self._encoders[key]

    def process(self, batch: RowBatch, source_vocab_file: str, target_vocab_file: Optional[str] = None):
        """Side inputs: the paths of the written vocabulary files (source, and target for seq2seq)."""
        targets = batch.targets if self._kind == "seq2seq" else [""] * len(batch)
        encoded = self._encoder(source_vocab_file, target_vocab_file)(tf.constant(batch.texts),
                                                                      tf.constant(targets))
        arrays = {name: tensor.numpy() for name, tensor in encoded.items()}
        n_source, n_target = arrays.pop("n_source"), arrays.pop("n_target")
        features, truncated = self._features(arrays, n_source, n_target, batch.labels)

        keep = np.ones(len(batch), dtype=bool)
        for i in np.flatnonzero(self._maybe_problems(n_source, n_target)).tolist():
            problem = self._problem(int(n_source[i]), int(n_target[i]))
            if problem:
                keep[i] = False
                self._rejected.inc()
                row = batch.row(i)
                yield beam.pvalue.TaggedOutput(REJECTED, rejection(row.id, row.raw(), STAGE_ENCODE, *problem))

        stats = {"truncated": int((truncated & keep).sum())}
        self._truncated.inc(stats["truncated"])
        splits = np.array(batch.splits)
        for split in SPLITS:
            rows = np.flatnonzero(keep & (splits == split))
            if rows.size:
                ids = [batch.ids[i] for i in rows.tolist()]
                yield split, serialize_int_examples({name: values[rows] for name, values in features.items()}, ids)
                stats[split] = int(rows.size)
                self._written.inc(int(rows.size))
        yield beam.pvalue.TaggedOutput(STATS, stats)

    def _features(self, arrays: dict[str, np.ndarray], n_source: np.ndarray, n_target: np.ndarray,
                  labels: list) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(the task's features as [rows, width] arrays, which rows were truncated)."""
        length, target_length = self._max_length, self._max_target_length
        if self._kind == "seq2seq":
            features = {
                "source": arrays["source"],
                "source_length": np.minimum(n_source, length)[:, None],
                "target_in": arrays["target_in"],
                "target_out": arrays["target_out"],
                "target_length": np.minimum(n_target + 1, target_length)[:, None],
            }
            return features, (n_source > length) | (n_target + 1 > target_length)
        if self._kind == "lm":
            features = {"tokens": arrays["tokens"], "targets": arrays["targets"],
                        "length": np.minimum(n_source + 1, length)[:, None]}
            return features, n_source + 1 > length
        features = {"tokens": arrays["tokens"], "length": np.minimum(n_source, length)[:, None],
                    "label": np.array(labels, dtype=np.int64)[:, None]}
        return features, n_source > length

    def _maybe_problems(self, n_source: np.ndarray, n_target: np.ndarray) -> np.ndarray:
        """Rows :meth:`_problem` may find something wrong with (it is asked about those only)."""
        bad = n_source == 0
        if self._kind == "seq2seq":
            bad |= n_target == 0
        if self._reject_overflow:
            bad |= n_source + (self._kind == "lm") > self._max_length
            if self._kind == "seq2seq":
                bad |= n_target + 1 > self._max_target_length
        return bad

    def _problem(self, n_source: int, n_target: int) -> Optional[tuple[str, str]]:
        """(code, detail) when a row cannot be encoded as configured."""
        if n_source == 0:
            return "no_tokens", "the text has no token after normalization"
        if self._kind == "seq2seq" and n_target == 0:
            return "no_tokens", "the target has no token after normalization"
        if not self._reject_overflow:
            return None
        if self._kind == "lm" and n_source + 1 > self._max_length:
            return TOO_MANY_TOKENS, f"{n_source} tokens + <start> > max_length {self._max_length}"
        if self._kind != "lm" and n_source > self._max_length:
            return TOO_MANY_TOKENS, f"{n_source} tokens > max_length {self._max_length}"
        if self._kind == "seq2seq" and n_target + 1 > self._max_target_length:
            return TOO_MANY_TOKENS, (
                f"target of {n_target} tokens + <end> > max_target_length {self._max_target_length}"
            )
        return None
