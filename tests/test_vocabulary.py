"""Vocabularies: reserved ids, top-K with min count, files, the Beam combiner."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from seqbeam.pipelines.config import TokenizerConfig, VocabConfig
from seqbeam.pipelines.runners import pipeline_options
from seqbeam.transforms.records import Row, RowBatch
from seqbeam.transforms.vocabulary import RESERVED_TOKENS, BuildVocabulary, Vocabulary


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
