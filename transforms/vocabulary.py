"""Building vocabularies at any corpus size, in Beam.

The result is a :class:`~seqbeam.text.vocabulary.Vocabulary`: reserved ids first, then the
K most frequent tokens. With pretrained vectors (``vocab.vectors``), reserved ids first, then
the vectors' words in row order (a fixed list, whatever the corpus), then the K most frequent
tokens the vectors lack: the vectors' words are left out of the counts on every worker, so
the counting below stays bounded by K as without vectors.

Tokens are counted per batch of rows in one TensorFlow call, then either

* exactly (default): counts summed per bundle, grouped by token bucket (buckets spread
  over the workers), summed per bucket, which keeps its K best, then K-bounded lists
  merged (:class:`ExactTopKVocabulary`); or
* approximately: a Misra-Gries summary (:class:`HeavyHitters`) of bounded size merged by
  :class:`ApproximateVocabularyFn`, for corpora whose distinct tokens fit on no worker.

No worker ever holds every distinct token.

With the WordPiece tokenizer the tokens counted are words: the ``wordpiece_words`` most
frequent ones keep their counts (the same top-K, bounded by that K), and the vocabulary of
``max_size`` pieces is learnt from that list on one worker (:class:`LearnWordPieces`).
"""

from __future__ import annotations

import collections
import heapq
import zlib
from typing import Iterable, Mapping

import apache_beam as beam
import tensorflow as tf
from apache_beam.transforms import window

from seqbeam.configs.schema import ConfigError, TokenizerConfig, VocabConfig
from seqbeam.text.tokenizer import TextTokenizer
from seqbeam.text.vectors import VectorsNotInstalled, check_available, vocabulary_words
from seqbeam.text.vocabulary import RESERVED_TOKENS, Vocabulary
from seqbeam.text.wordpiece import learn_vocabulary


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


class CountTrainTokens(beam.DoFn):
    """Token counts of the train rows of a batch (one dict per batch, not one element per token).

    With ``vectors``, the words of the vectors' first ``vectors_rows`` rows (0: all) are not
    counted: they are in the vocabulary anyway. Each worker reads that word list once, in
    ``setup``: a fixed size (400,000 words for GloVe 6B), not growing with the corpus.
    """

    def __init__(self, tokenizer: TokenizerConfig, column: str, vectors: str = "", vectors_rows: int = 0):
        self._tokenizer_config = tokenizer
        self._column = column
        self._vectors = vectors
        self._vectors_rows = vectors_rows

    def setup(self):
        self._counter = TokenCounter(TextTokenizer.from_config(self._tokenizer_config))
        self._known = frozenset(vocabulary_words(self._vectors, self._vectors_rows)) if self._vectors else frozenset()

    def process(self, batch):
        column = getattr(batch, self._column)
        texts = [text for text, split in zip(column, batch.splits) if split == "train"]
        if texts:
            counts = self._counter.count(texts)
            known = self._known
            yield {token: count for token, count in counts.items() if token not in known} if known else counts


# Distinct tokens a worker sums before it passes them on (a few MB of Python dict).
_BUNDLE_TOKENS = 100_000
# Token buckets of the exact count: a worker holds one bucket's tokens at a time.
TOKEN_BUCKETS = 256


def token_bucket(token: str, buckets: int = TOKEN_BUCKETS) -> int:
    """The bucket of a token: a hash that is the same in every process (Python's ``hash`` is salted)."""
    return zlib.crc32(token.encode("utf-8")) % buckets


class SumCountsPerBundle(beam.DoFn):
    """Per-batch token counts -> ``(bucket, {token: count})`` sums over the bundle, one dict per bucket.

    Each token of a bundle goes down the pipeline once, not once per batch. The sums are
    passed on whenever more than ``max_tokens`` distinct tokens are held, so a worker never
    holds more than that, whatever the corpus; every count of a token lands in its bucket.
    """

    def __init__(self, max_tokens: int = _BUNDLE_TOKENS, buckets: int = TOKEN_BUCKETS):
        self._max_tokens = max_tokens
        self._buckets = buckets

    def start_bundle(self):
        self._sums: collections.Counter = collections.Counter()

    def process(self, counts: Mapping[str, int]):
        self._sums.update(counts)
        if len(self._sums) > self._max_tokens:
            yield from self._flush()

    def finish_bundle(self):
        for chunk in self._flush():
            yield window.GlobalWindows.windowed_value(chunk)

    def _flush(self) -> Iterable[tuple[int, dict[str, int]]]:
        by_bucket: dict[int, dict[str, int]] = collections.defaultdict(dict)
        for token, count in self._sums.items():
            by_bucket[token_bucket(token, self._buckets)][token] = count
        self._sums = collections.Counter()
        return list(by_bucket.items())


def bucket_top(bucket: tuple[int, Iterable[Mapping[str, int]]], k: int, min_count: int) -> list[tuple[int, str]]:
    """The ``k`` best ``(-count, token)`` of one bucket's summed counts (``min_count`` and more, not reserved).

    Ranked as :meth:`Vocabulary.from_counts` ranks: count descending, then token ascending.
    """
    _, chunks = bucket
    counts: collections.Counter = collections.Counter()
    for chunk in chunks:
        counts.update(chunk)
    ranked = sorted((-count, token) for token, count in counts.items()
                    if count >= min_count and token not in RESERVED_TOKENS)
    return ranked[:k]


class TopKVocabularyFn(beam.CombineFn):
    """Lists of ranked ``(-count, token)`` -> the Vocabulary of the ``max_size - 4`` best; bounded by K.

    Accumulators are sorted lists of at most K entries: merging two is one sort of 2K. With
    ``with_counts`` the output is the ``(token, count)`` list itself, best first.
    """

    def __init__(self, max_size: int, with_counts: bool = False):
        self._max_size = max_size
        self._k = max_size - len(RESERVED_TOKENS)
        self._with_counts = with_counts

    def create_accumulator(self) -> list:
        return []

    def add_input(self, best: list, ranked: list) -> list:
        return sorted(best + ranked)[: self._k]

    def merge_accumulators(self, accumulators: Iterable[list]) -> list:
        merged: list = []
        for best in accumulators:
            merged = sorted(merged + best)[: self._k]
        return merged

    def extract_output(self, best: list):
        if self._with_counts:
            return [(token, -negative) for negative, token in best]
        return Vocabulary(RESERVED_TOKENS + tuple(token for _, token in best))


class ExactTopKVocabulary(beam.PTransform):
    """Per-batch token counts -> a singleton PCollection holding the exact top-K Vocabulary.

    Counts are summed per bundle, grouped by token bucket (buckets spread over the workers;
    the shuffle holds compact dicts, not an element per token), summed per bucket, which
    then keeps its K = ``max_size - 4`` best, and the bounded lists are merged. Every count
    of a token is in its bucket, so the result equals a plain Counter's top-K, ties broken
    by the token. With no input it still gives the reserved tokens. With ``with_counts`` the
    singleton is the ``(token, count)`` list of those K tokens instead, best first.
    """

    def __init__(self, max_size: int, min_count: int = 1, with_counts: bool = False):
        super().__init__()
        self._max_size = max_size
        self._min_count = min_count
        self._with_counts = with_counts

    def expand(self, counts):
        k = self._max_size - len(RESERVED_TOKENS)
        return (
            counts
            | "SumPerBundle" >> beam.ParDo(SumCountsPerBundle())
            # A GroupByKey, not a lifted combine: lifting would merge a bundle's chunks into
            # one dict per bucket, i.e. every distinct token of the bundle in one process.
            | "GroupByBucket" >> beam.GroupByKey()
            | "BucketTopK" >> beam.Map(bucket_top, k, self._min_count)
            | "TopK" >> beam.CombineGlobally(TopKVocabularyFn(self._max_size, self._with_counts))
        )


class HeavyHitters:
    """A mergeable Misra-Gries summary of weighted token counts (Agarwal et al., 2012).

    It keeps a counter per tracked token and never more than ``2 * capacity`` of them:
    once it reaches that many, it is pruned back to ``capacity`` by subtracting the
    ``(capacity + 1)``-th largest counter from every counter and dropping those left at
    zero or below (amortised: one prune per ``capacity`` new tokens at least). Merging sums
    the counters of both summaries, pruning the same way.

    Bound: every estimated count is within ``N / (capacity + 1)`` below the true count,
    where ``N`` (:attr:`total`) is the sum of all token occurrences counted into this
    summary and the summaries merged into it, and no estimate exceeds the true count.

    Proof: let ``M`` be the sum of the counters, ``D = N - M`` the occurrences removed so
    far and ``Δ`` (:attr:`max_error`) the sum of the thresholds ``c`` subtracted by every
    prune. A prune lowers each counter by at most ``c``, so each estimate falls at most
    ``Δ`` below its true count; since at least ``capacity + 1`` counters hold ``c`` or more,
    ``D`` grows by at least ``(capacity + 1) * c``. Summing two summaries adds their ``N``,
    ``M``, ``D`` and ``Δ``. Hence ``(capacity + 1) * Δ <= D <= N`` holds throughout, and
    ``true - N / (capacity + 1) <= true - Δ <= estimate <= true``.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.counts: dict[str, int] = {}
        self.total = 0
        self.max_error = 0

    @property
    def error_bound(self) -> float:
        """``N / (capacity + 1)``: no estimate is further than this below its true count."""
        return self.total / (self.capacity + 1)

    def estimate(self, token: str) -> int:
        """The estimated count of ``token`` (0 when it is not tracked)."""
        return self.counts.get(token, 0)

    def add_counts(self, counts: Mapping[str, int]) -> None:
        """Counts ``count`` occurrences of each ``token`` of the mapping."""
        limit = 2 * self.capacity
        for token, count in counts.items():
            self.counts[token] = self.counts.get(token, 0) + count
            self.total += count
            if len(self.counts) >= limit:
                self.prune()

    def merge(self, other: "HeavyHitters") -> None:
        """Adds the counters of a summary of the same capacity to this one."""
        if other.capacity != self.capacity:
            raise ValueError(f"cannot merge summaries of capacity {self.capacity} and {other.capacity}")
        limit = 2 * self.capacity
        for token, count in other.counts.items():
            self.counts[token] = self.counts.get(token, 0) + count
            if len(self.counts) >= limit:
                self.prune()
        self.total += other.total
        self.max_error += other.max_error

    def prune(self) -> None:
        """Keeps at most ``capacity`` counters, lowering each by the (capacity+1)-th largest."""
        if len(self.counts) <= self.capacity:
            return
        threshold = heapq.nlargest(self.capacity + 1, self.counts.values())[-1]
        self.counts = {t: c - threshold for t, c in self.counts.items() if c > threshold}
        self.max_error += threshold


class ApproximateVocabularyFn(beam.CombineFn):
    """Per-batch token counts -> the Vocabulary of a :class:`HeavyHitters` summary's top tokens.

    The summary tracks ``capacity_factor * K`` tokens, K = ``max_size - 4``. Tokens are
    ranked by estimated count, ties broken by the token, and ``min_count`` applies to the
    estimate. Every token whose true count exceeds the K-th largest true count by more
    than ``N / (capacity + 1)`` is in the vocabulary (see :class:`HeavyHitters`).
    """

    def __init__(self, max_size: int, min_count: int = 1, capacity_factor: int = 4, with_counts: bool = False):
        self._max_size = max_size
        self._min_count = min_count
        self._capacity = capacity_factor * (max_size - len(RESERVED_TOKENS))
        self._with_counts = with_counts

    def create_accumulator(self) -> HeavyHitters:
        return HeavyHitters(self._capacity)

    def add_input(self, summary: HeavyHitters, counts: Mapping[str, int]) -> HeavyHitters:
        summary.add_counts(counts)
        return summary

    def merge_accumulators(self, summaries: Iterable[HeavyHitters]) -> HeavyHitters:
        merged = self.create_accumulator()
        for summary in summaries:
            merged.merge(summary)
        return merged

    def compact(self, summary: HeavyHitters) -> HeavyHitters:
        summary.prune()
        return summary

    def extract_output(self, summary: HeavyHitters):
        vocabulary = Vocabulary.from_counts(summary.counts, self._max_size, self._min_count)
        if self._with_counts:
            return [(token, summary.counts[token]) for token in vocabulary.tokens[len(RESERVED_TOKENS):]]
        return vocabulary


def with_vector_words(corpus: Vocabulary, vectors: str, vectors_rows: int = 0) -> Vocabulary:
    """The reserved tokens, the words of the vectors' first ``vectors_rows`` rows (0: all), then ``corpus``'s other tokens.

    ``corpus`` holds the train tokens the vectors lack (:class:`CountTrainTokens` leaves
    their words out); a token of it that the vectors do know is not repeated.
    """
    words = vocabulary_words(vectors, vectors_rows)
    known = set(words)
    extra = tuple(token for token in corpus.tokens[len(RESERVED_TOKENS):] if token not in known)
    return Vocabulary(RESERVED_TOKENS + words + extra)


class LearnWordPieces(beam.PTransform):
    """A singleton ``[(word, count), ...]`` (the top words) -> the singleton WordPiece Vocabulary.

    The list is bounded by ``wordpiece_words``, so learning on one worker costs the same at
    any corpus size.
    """

    def __init__(self, max_size: int):
        super().__init__()
        self._max_size = max_size

    def expand(self, word_counts):
        return word_counts | "Learn" >> beam.Map(learn_vocabulary, self._max_size)


class BuildVocabulary(beam.PTransform):
    """RowBatches -> a singleton PCollection holding the train-split Vocabulary.

    ``column`` is the RowBatch column counted: ``texts`` or ``targets``. ``vocab.approximate``
    picks the heavy-hitters summary over the exact keyed counts. With ``vocab.vectors`` the
    vocabulary starts with the vectors' words (see the module docstring); their availability
    is checked here, at launch: a missing file or package is a ConfigError naming
    ``config_key``'s ``vectors``. With the WordPiece tokenizer the words are counted and the
    vocabulary of pieces is learnt from the ``vocab.wordpiece_words`` most frequent ones.
    """

    def __init__(self, tokenizer: TokenizerConfig, vocab: VocabConfig, column: str = "texts",
                 config_key: str = "preprocess.source_vocab"):
        super().__init__()
        self._tokenizer = tokenizer
        self._wordpiece = tokenizer.level == "wordpiece"
        self._vocab = vocab
        self._column = column
        if vocab.vectors:
            try:
                check_available(vocab.vectors)
            except (VectorsNotInstalled, FileNotFoundError) as error:
                raise ConfigError(f"{config_key}.vectors: {error}") from None

    def expand(self, batches):
        vocab = self._vocab
        counts = batches | "CountTokens" >> beam.ParDo(
            CountTrainTokens(self._tokenizer, self._column, vocab.vectors, vocab.vectors_rows))
        # WordPiece: the top words with their counts (K of them, reserved ids aside), then the pieces.
        size = vocab.wordpiece_words + len(RESERVED_TOKENS) if self._wordpiece else vocab.max_size
        if vocab.approximate:
            corpus = counts | "HeavyHitters" >> beam.CombineGlobally(
                ApproximateVocabularyFn(size, vocab.min_count, vocab.capacity_factor, with_counts=self._wordpiece))
        else:
            corpus = counts | "ExactTopK" >> ExactTopKVocabulary(size, vocab.min_count, with_counts=self._wordpiece)
        if self._wordpiece:
            return corpus | "LearnWordPieces" >> LearnWordPieces(vocab.max_size)
        if not vocab.vectors:
            return corpus
        return corpus | "AddVectorWords" >> beam.Map(with_vector_words, vocab.vectors, vocab.vectors_rows)
