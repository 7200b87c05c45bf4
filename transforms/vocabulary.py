"""Vocabularies: reserved ids, top-K building with a Beam combiner, files, lookup tables.

Every vocabulary starts with the reserved tokens ``0 <pad>``, ``1 <unk>``, ``2 <start>``,
``3 <end>``; the file format is one token per line, line number = id. Token counts are
made per batch of rows and merged by a ``CombineFn``, so no per-token element ever goes
through the shuffle.
"""

from __future__ import annotations

import collections
import hashlib
from typing import Iterable, Mapping

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems

from seqbeam.pipelines.config import TokenizerConfig, VocabConfig
from seqbeam.transforms.tokenizer import TextTokenizer

PAD, UNK, START, END = "<pad>", "<unk>", "<start>", "<end>"
RESERVED_TOKENS = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = range(4)


class Vocabulary:
    """An ordered token list (index = id) whose first four entries are the reserved tokens."""

    def __init__(self, tokens: Iterable[str]):
        self.tokens = tuple(tokens)
        if self.tokens[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
            raise ValueError(f"a vocabulary must start with {RESERVED_TOKENS}, got {self.tokens[:4]}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary cannot hold the same token twice")
        bad = [t for t in self.tokens if not t or "\n" in t or "\r" in t]
        if bad:
            raise ValueError(f"tokens cannot be empty or hold line breaks: {bad[:3]!r}")
        self.fingerprint = hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.tokens == self.tokens

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, fingerprint={self.fingerprint})"

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], max_size: int, min_count: int = 1) -> "Vocabulary":
        """The ``max_size - 4`` most frequent tokens seen ``min_count`` times or more.

        Ties are broken by the token itself so that the same counts give the same ids on
        every runner.
        """
        kept = [(t, c) for t, c in counts.items() if c >= min_count and t not in RESERVED_TOKENS]
        kept.sort(key=lambda item: (-item[1], item[0]))
        return cls(RESERVED_TOKENS + tuple(t for t, _ in kept[: max_size - len(RESERVED_TOKENS)]))

    def save(self, path: str) -> None:
        """Writes the vocabulary file (local or gs://)."""
        with FileSystems.create(path) as f:
            f.write(("\n".join(self.tokens) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str) -> "Vocabulary":
        """Reads a vocabulary file written by :meth:`save`."""
        with FileSystems.open(path) as f:
            return cls(f.read().decode("utf-8").split("\n")[:-1])

    def lookup_table(self, vocab_file: str = "") -> tf.lookup.StaticHashTable:
        """A TensorFlow table mapping token strings to ids, unknown tokens to ``UNK_ID``.

        Given the vocabulary's file, the table is initialised from it, and a SavedModel
        holding the table carries the file as an asset.
        """
        if vocab_file:
            initializer = tf.lookup.TextFileInitializer(
                vocab_file, key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            )
        else:
            initializer = tf.lookup.KeyValueTensorInitializer(
                keys=tf.constant(self.tokens, dtype=tf.string),
                values=tf.range(len(self.tokens), dtype=tf.int64),
            )
        return tf.lookup.StaticHashTable(initializer, default_value=UNK_ID)


class TokenCounter(tf.Module):
    """Texts -> (distinct tokens, their counts), tokenization included, in one graph call."""

    def __init__(self, tokenizer: TextTokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        unique, _, counts = tf.unique_with_counts(self.tokenizer.tokenize(texts).flat_values)
        return unique, counts

    def count(self, texts: list[str]) -> dict[str, int]:
        """Occurrences of each distinct token of the texts."""
        unique, counts = self(tf.constant(texts, dtype=tf.string))
        return dict(zip((t.decode("utf-8") for t in unique.numpy()), counts.numpy().tolist()))


class TopKVocabularyFn(beam.CombineFn):
    """Merges per-batch token counts and keeps the top ``max_size`` tokens as a Vocabulary."""

    def __init__(self, max_size: int, min_count: int = 1):
        self._max_size = max_size
        self._min_count = min_count

    def create_accumulator(self) -> collections.Counter:
        return collections.Counter()

    def add_input(self, accumulator: collections.Counter, counts: Mapping[str, int]):
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[collections.Counter]):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator: collections.Counter) -> Vocabulary:
        return Vocabulary.from_counts(accumulator, self._max_size, self._min_count)


class CountTrainTokens(beam.DoFn):
    """Token counts of the train rows of a batch (one dict per batch, not one element per token)."""

    def __init__(self, tokenizer: TokenizerConfig, column: str):
        self._tokenizer_config = tokenizer
        self._column = column

    def setup(self):
        self._counter = TokenCounter(TextTokenizer.from_config(self._tokenizer_config))

    def process(self, batch):
        column = getattr(batch, self._column)
        texts = [text for text, split in zip(column, batch.splits) if split == "train"]
        if texts:
            yield self._counter.count(texts)


class BuildVocabulary(beam.PTransform):
    """RowBatches -> a singleton PCollection holding the top-K train-split Vocabulary.

    ``column`` is the RowBatch column counted: ``texts`` or ``targets``.
    """

    def __init__(self, tokenizer: TokenizerConfig, vocab: VocabConfig, column: str = "texts"):
        super().__init__()
        self._tokenizer = tokenizer
        self._vocab = vocab
        self._column = column

    def expand(self, batches):
        return (
            batches
            | "CountTokens" >> beam.ParDo(CountTrainTokens(self._tokenizer, self._column))
            | "TopK" >> beam.CombineGlobally(TopKVocabularyFn(self._vocab.max_size, self._vocab.min_count))
        )
