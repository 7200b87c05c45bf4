"""Vocabularies: reserved ids, top-K with min count, files, exact and approximate building."""

import collections
import copy
import itertools
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from seqbeam.configs.schema import TokenizerConfig, VocabConfig
from seqbeam.pipelines.options import pipeline_options
from seqbeam.transforms.records import Row, RowBatch
from seqbeam.text.vocabulary import RESERVED_TOKENS, Vocabulary
from seqbeam.transforms.vocabulary import (
    ApproximateVocabularyFn,
    BuildVocabulary,
    HeavyHitters,
    SumCountsPerBundle,
    token_bucket,
)

IN_PROCESS: list[str] = []
MULTI_PROCESSING = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
WORDS = TokenizerConfig(level="word")


def test_from_counts_keeps_top_k_with_ties_broken_by_token():
    counts = {"the": 10, "a": 7, "cat": 3, "bat": 3, "zebra": 1, "<unk>": 50}
    vocab = Vocabulary.from_counts(counts, max_size=7, min_count=1)
    assert vocab.tokens == RESERVED_TOKENS + ("the", "a", "bat")
    assert Vocabulary.from_counts(counts, max_size=100, min_count=3).tokens == RESERVED_TOKENS + (
        "the", "a", "bat", "cat")


def test_file_round_trip_and_validation(tmp_path):
    vocab = Vocabulary(RESERVED_TOKENS + ("x", " ", "é"))
    path = str(tmp_path / "vocab.txt")
    vocab.save(path)
    assert Vocabulary.load(path) == vocab
    assert open(path, encoding="utf-8").read().split("\n")[:4] == list(RESERVED_TOKENS)
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(("a", "b"))
    with pytest.raises(ValueError, match="twice"):
        Vocabulary(RESERVED_TOKENS + ("a", "a"))


def test_build_vocabulary_counts_train_rows_only_across_batches():
    batches = [
        RowBatch.from_rows([Row("1", "b b b a", split="train"), Row("2", "c c c c c", split="valid")]),
        RowBatch.from_rows([Row("3", "a a d", split="train"), Row("4", "b e", split="train")]),
    ]
    # Train counts: b=4, a=3, d=1, e=1 (c appears only in valid and must not count).
    expected = Vocabulary(RESERVED_TOKENS + ("b", "a", "d"))
    with TestPipeline(options=pipeline_options([])) as p:
        vocab = (
            p
            | beam.Create(batches)
            | BuildVocabulary(TokenizerConfig(level="word"), VocabConfig(max_size=7, min_count=1))
        )
        assert_that(vocab, equal_to([expected]))


def test_lookup_table_maps_unknown_tokens_to_unk():
    import tensorflow as tf

    table = Vocabulary(RESERVED_TOKENS + ("a",)).lookup_table()
    assert table.lookup(tf.constant(["a", "zz", "<pad>"])).numpy().tolist() == [4, 1, 0]


# --- corpora --------------------------------------------------------------------------


def corpus_rows(train_counts: dict, other_counts: dict, seed: int, tokens_per_row: int = 16) -> list[Row]:
    """Rows whose train tokens occur exactly ``train_counts`` times, shuffled over the rows;
    ``other_counts`` go to valid/test rows, which no vocabulary may count."""
    rng = random.Random(seed)
    rows = []
    for splits, counts in ((("train",), train_counts), (("valid", "test"), other_counts)):
        tokens = [token for token, count in counts.items() for _ in range(count)]
        rng.shuffle(tokens)
        for start in range(0, len(tokens), tokens_per_row):
            text = " ".join(tokens[start:start + tokens_per_row])
            rows.append(Row(f"gen:{len(rows)}", text, split=rng.choice(splits)))
    rng.shuffle(rows)
    return rows


def as_batches(rows: list[Row], batch_size: int) -> list[RowBatch]:
    return [RowBatch.from_rows(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]


def train_counter(rows: list[Row]) -> collections.Counter:
    return collections.Counter(token for row in rows if row.split == "train" for token in row.text.split())


def counter_top_k(rows: list[Row], max_size: int, min_count: int) -> Vocabulary:
    """The vocabulary a plain Counter over the train rows gives: count desc, then token asc."""
    counts = train_counter(rows)
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return Vocabulary(RESERVED_TOKENS + tuple(ranked[: max_size - len(RESERVED_TOKENS)]))


# Ties straddle every cut tested: four tokens at 5 across K=4, two at 2 across K=9.
TIED_COUNTS = {"kiwi": 9, "apple": 7, "mango": 5, "fig": 5, "date": 5, "pear": 5, "plum": 3,
               "lime": 3, "yam": 2, "okra": 2, "bean": 1, "corn": 1, "leek": 1, "nut": 1}
# Only in valid/test rows: counted, they would take the first places.
HELD_OUT_COUNTS = {"zzz": 50, "mango": 20, "yam": 30}
# (max_size, min_count): ties at the cut, then min_count cutting inside or above the top-K.
SIZES = [(8, 1), (13, 1), (13, 3), (8, 6), (100, 1)]


@pytest.mark.parametrize("runner", [pytest.param(IN_PROCESS, id="in_process"),
                                    pytest.param(MULTI_PROCESSING, id="multi_processing", marks=pytest.mark.slow)])
def test_vocabulary_equals_a_counter_top_k_with_ties_at_the_cut(runner):
    rows = corpus_rows(TIED_COUNTS, HELD_OUT_COUNTS, seed=7, tokens_per_row=3)
    # The smallest summary (K=4, capacity 16) tracks every distinct train token: exact too.
    assert len(TIED_COUNTS) <= 4 * (8 - len(RESERVED_TOKENS))
    expected = {size: counter_top_k(rows, *size) for size in SIZES}
    assert expected[(8, 1)].tokens[4:] == ("kiwi", "apple", "date", "fig")
    assert expected[(13, 1)].tokens[-1] == "okra"
    with TestPipeline(options=pipeline_options(runner)) as p:
        batches = p | beam.Create(as_batches(rows, batch_size=4))
        sizes = SIZES if runner == IN_PROCESS else SIZES[1:3]  # each worker process pays TF start-up
        for (max_size, min_count), approximate in itertools.product(sizes, (False, True)):
            name = f"{max_size}_{min_count}_{'approximate' if approximate else 'exact'}"
            config = VocabConfig(max_size=max_size, min_count=min_count, approximate=approximate)
            vocab = batches | f"Vocab{name}" >> BuildVocabulary(WORDS, config)
            assert_that(vocab, equal_to([expected[(max_size, min_count)]]), label=f"Check{name}")


@pytest.mark.parametrize("approximate", [False, True], ids=["exact", "approximate"])
def test_a_corpus_without_train_rows_gives_the_reserved_tokens_as_a_singleton(approximate):
    config = VocabConfig(max_size=10, approximate=approximate)
    no_train = [RowBatch.from_rows([Row("1", "a b", split="valid"), Row("2", "c", split="test")])]
    with TestPipeline(options=pipeline_options([])) as p:
        for name, batches in (("NoBatches", []), ("NoTrainRows", no_train)):
            vocab = (p | f"{name}Create" >> beam.Create(batches).with_output_types(RowBatch)
                     | f"{name}Vocab" >> BuildVocabulary(WORDS, config))
            sizes = (p | f"{name}One" >> beam.Create([0])
                     | f"{name}Use" >> beam.Map(lambda _, v: v.tokens, beam.pvalue.AsSingleton(vocab)))
            assert_that(sizes, equal_to([RESERVED_TOKENS]), label=f"{name}Check")


# --- a long tail: far more distinct tokens than K ------------------------------------

LONG_TAIL_K = 100
LONG_TAIL_MAX_SIZE = LONG_TAIL_K + len(RESERVED_TOKENS)


def long_tail_counts() -> dict:
    """30 frequent tokens, 120 in groups of four equal counts (a group straddles position K),
    and 50,000 tokens seen once."""
    counts = {f"head{i:02d}": 3000 - 50 * i for i in range(30)}
    counts.update({f"mid{j:03d}": 400 - 5 * (j // 4) for j in range(120)})
    counts.update({f"once{n}": 1 for n in range(50_000)})
    return counts


@pytest.fixture(scope="module")
def long_tail():
    rows = corpus_rows(long_tail_counts(), {}, seed=11)
    truth = train_counter(rows)
    ranked = sorted(truth.values(), reverse=True)
    return rows, truth, ranked[LONG_TAIL_K - 1]


def approximate_guarantees(vocab: Vocabulary, truth: collections.Counter, kth_count: int, bound: float):
    """Every token counted more than the K-th count plus the bound is in; none in is counted
    less than the K-th count minus the bound."""
    must = {t for t, c in truth.items() if c > kth_count + bound}
    assert must, "the corpus must make the guarantee say something"
    assert must <= set(vocab.tokens)
    assert len(vocab) == LONG_TAIL_MAX_SIZE
    assert all(truth[t] >= kth_count - bound for t in vocab.tokens[4:])


def test_long_tail_exact_and_approximate_vocabularies(long_tail):
    rows, truth, kth_count = long_tail
    assert len(truth) > 50_000 and kth_count == 315
    expected = counter_top_k(rows, LONG_TAIL_MAX_SIZE, 1)
    exact_config = VocabConfig(max_size=LONG_TAIL_MAX_SIZE)
    approximate_config = VocabConfig(max_size=LONG_TAIL_MAX_SIZE, approximate=True)
    bound = sum(truth.values()) / (4 * LONG_TAIL_K + 1)

    def check_approximate(vocabularies):
        (vocab,) = vocabularies
        approximate_guarantees(vocab, truth, kth_count, bound)

    with TestPipeline(options=pipeline_options([])) as p:
        batches = p | beam.Create(as_batches(rows, batch_size=512))
        exact = batches | "Exact" >> BuildVocabulary(WORDS, exact_config)
        approximate = batches | "Approximate" >> BuildVocabulary(WORDS, approximate_config)
        assert_that(exact, equal_to([expected]), label="CheckExact")
        assert_that(approximate, check_approximate, label="CheckApproximate")


# --- the Misra-Gries combiner on its own -----------------------------------------------


def test_heavy_hitters_prunes_by_the_capacity_plus_first_count():
    summary = HeavyHitters(capacity=2)
    summary.add_counts({"a": 5, "b": 3, "c": 1})
    assert summary.counts == {"a": 5, "b": 3, "c": 1} and summary.max_error == 0
    summary.add_counts({"d": 2})  # 4 = 2 * capacity counters: subtract the 3rd largest, 2
    assert summary.counts == {"a": 3, "b": 1}
    assert (summary.total, summary.max_error, summary.error_bound) == (11, 2, 11 / 3)
    assert [summary.estimate(t) for t in "abcd"] == [3, 1, 0, 0]
    fn = ApproximateVocabularyFn(max_size=6, min_count=2, capacity_factor=1)
    # min_count applies to the estimate: b (seen 3 times, estimated 1) is left out.
    assert fn.extract_output(summary).tokens == RESERVED_TOKENS + ("a",)
    with pytest.raises(ValueError, match="capacity"):
        HeavyHitters(capacity=0)
    with pytest.raises(ValueError, match="capacity"):
        summary.merge(HeavyHitters(capacity=3))


def test_approximate_fn_ranks_estimates_like_from_counts():
    fn = ApproximateVocabularyFn(max_size=7, min_count=1)
    summary = fn.add_input(fn.create_accumulator(), {"the": 10, "a": 7, "cat": 3, "bat": 3, "<unk>": 50})
    assert fn.extract_output(summary).tokens == RESERVED_TOKENS + ("the", "a", "bat")
    assert fn.extract_output(fn.create_accumulator()).tokens == RESERVED_TOKENS


def batch_counts(rows: list[Row], batch_size: int) -> list[dict]:
    """Per-batch train token counts, as CountTrainTokens makes them."""
    return [dict(train_counter(rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]


def check_bound(summary: HeavyHitters, truth: collections.Counter) -> None:
    assert summary.total == sum(truth.values())
    assert summary.max_error <= summary.error_bound
    assert len(summary.counts) < 2 * summary.capacity
    for token, count in truth.items():
        assert count - summary.max_error <= summary.estimate(token) <= count, token
    assert set(summary.counts) <= set(truth)


def tree_merge(fn: ApproximateVocabularyFn, summaries: list[HeavyHitters]) -> HeavyHitters:
    while len(summaries) > 1:
        summaries = [fn.merge_accumulators(summaries[i:i + 2]) for i in range(0, len(summaries), 2)]
    return summaries[0]


def test_misra_gries_merges_in_any_order_stay_within_the_bound(long_tail):
    rows, truth, kth_count = long_tail
    fn = ApproximateVocabularyFn(max_size=LONG_TAIL_MAX_SIZE, capacity_factor=4)
    capacity = 4 * LONG_TAIL_K
    parts = []
    for part in range(13):
        summary = fn.create_accumulator()
        for counts in batch_counts(rows[part::13], batch_size=64):
            summary = fn.add_input(summary, counts)
            assert len(summary.counts) < 2 * capacity
        parts.append(summary)
    for summary, part in zip(parts, range(13)):
        check_bound(summary, train_counter(rows[part::13]))
    before = copy.deepcopy(parts)
    rng = random.Random(3)
    shuffled = [rng.sample(parts, len(parts)) for _ in range(3)]
    merges = [fn.merge_accumulators(parts), fn.merge_accumulators(parts[::-1]), tree_merge(fn, parts),
              fn.merge_accumulators([tree_merge(fn, parts[:5]), fn.merge_accumulators(parts[5:])])]
    merges += [fn.merge_accumulators(order) for order in shuffled]
    assert [p.counts for p in parts] == [b.counts for b in before], "merging must not change its inputs"
    for merged in merges:
        check_bound(merged, truth)
        assert merged.max_error > 0, "the corpus must make the summaries prune"
        approximate_guarantees(fn.extract_output(merged), truth, kth_count, merged.error_bound)
    compacted = fn.compact(merges[0])
    assert len(compacted.counts) <= capacity
    check_bound(compacted, truth)


def test_bundle_sums_stay_bounded_and_keep_every_count_in_its_bucket():
    """A worker flushes its sums past ``max_tokens`` distinct tokens; flushed chunks still add up exactly."""
    rng = random.Random(3)
    batches = [collections.Counter(f"t{rng.randrange(500)}" for _ in range(40)) for _ in range(200)]
    summer = SumCountsPerBundle(max_tokens=50, buckets=8)
    summer.start_bundle()
    chunks = [chunk for batch in batches for chunk in summer.process(batch)]
    assert len(chunks) > 8, "the sums were never flushed mid-bundle"
    chunks += [windowed.value for windowed in summer.finish_bundle()]
    total: collections.Counter = collections.Counter()
    for bucket, counts in chunks:
        assert len(counts) <= 51 and all(token_bucket(token, 8) == bucket for token in counts)
        total.update(counts)
    assert total == sum(batches, collections.Counter())


# ------------------------------------------------------------------------------ pretrained vectors' words


def write_vectors_file(path, words, header: bool = False) -> str:
    """A GloVe-format file (or .vec with ``header``) of 3-d vectors for ``words``, in that order."""
    lines = [f"{len(words)} 3"] if header else []
    lines += [f"{word} {i} 0.5 -1" for i, word in enumerate(words)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


VECTOR_WORDS = ["the", "cat", "<unk>", "sat", "the", "on"]  # a reserved token and a duplicate, left out


@pytest.mark.parametrize("approximate", [False, True], ids=["exact", "approximate"])
def test_vectors_words_then_the_top_k_train_tokens_they_lack(tmp_path, approximate):
    path = write_vectors_file(tmp_path / "vectors.vec", VECTOR_WORDS, header=True)
    batches = [RowBatch.from_rows([Row("1", "the cat sat on the mat mat mat", split="train"),
                                   Row("2", "a zebra zebra sat", split="train"),
                                   Row("3", "held out words", split="valid")])]
    # Train tokens the vectors lack: mat=3, zebra=2, a=1; K = 6 - 4 = 2 of them.
    config = VocabConfig(max_size=6, vectors=path, approximate=approximate)
    expected = Vocabulary(RESERVED_TOKENS + ("the", "cat", "sat", "on", "mat", "zebra"))
    with TestPipeline(options=pipeline_options([])) as p:
        vocab = p | beam.Create(batches) | BuildVocabulary(WORDS, config)
        assert_that(vocab, equal_to([expected]))


def test_vectors_rows_takes_the_first_rows_only(tmp_path):
    path = write_vectors_file(tmp_path / "glove.txt", ["the", "cat", "sat", "on"])
    batches = [RowBatch.from_rows([Row("1", "on the mat", split="train")])]
    config = VocabConfig(max_size=10, vectors=path, vectors_rows=2)
    expected = Vocabulary(RESERVED_TOKENS + ("the", "cat", "mat", "on"))  # "on" is past row 2: a corpus token
    with TestPipeline(options=pipeline_options([])) as p:
        vocab = p | beam.Create(batches) | BuildVocabulary(WORDS, config)
        assert_that(vocab, equal_to([expected]))


def test_missing_vectors_fail_at_launch_naming_the_key(tmp_path, monkeypatch):
    from seqbeam.configs.schema import ConfigError
    from seqbeam.text import vectors

    missing = str(tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match=rf"preprocess.source_vocab.vectors: .*not found: {missing}"):
        BuildVocabulary(WORDS, VocabConfig(vectors=missing))
    package = vectors.RegisteredVectors(package="kumo-nope", module="seqbeam_no_such_module", matrix="m.npy",
                                        index="i.parquet", extra="nope")
    monkeypatch.setitem(vectors.REGISTERED, "nope-vectors", package)
    with pytest.raises(ConfigError, match=r"preprocess.source_vocab.vectors: .*kumo-nope.*seqbeam\[nope\]"):
        BuildVocabulary(WORDS, VocabConfig(vectors="nope-vectors"))
