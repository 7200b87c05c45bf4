"""WordPiece subwords: the vocabulary learnt in Beam from word counts, the same ids in Beam and the
SavedModel, and case, identifiers and numbers through tokenization and back."""

from __future__ import annotations

import collections
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from seqbeam.configs.schema import ConfigError, TokenizerConfig, VocabConfig, config_from_dict
from seqbeam.pipelines import layout, preprocess
from seqbeam.pipelines.options import pipeline_options
from seqbeam.text.encoding import TokenIds
from seqbeam.text.tokenizer import TextTokenizer
from seqbeam.text.vocabulary import RESERVED_TOKENS, UNK_ID, Vocabulary
from seqbeam.text.wordpiece import SUFFIX, join_pieces, join_pieces_py, learn_vocabulary
from seqbeam.transforms.records import Row, RowBatch
from seqbeam.transforms.vocabulary import BuildVocabulary

from conftest import line_id, read_examples

CASED = TextTokenizer(level="wordpiece", lowercase=False, normalization="NFC")
SENTENCES = [
    "Árabe (OLPC)",
    "prefer-l32r conflicts with prefer-const16",
    "Show 42 files in /tmp, not 7.",
    "¿Dónde está el archivo «README»?",
    "Display this help and exit",
    "Unknown option --no-color for GNU tar 1.34",
]
# Words the vocabulary never saw as words, made of characters it knows.
UNSEEN = ["Prefer-L16", "tar-1.43", "OLPC,", "ficheros"]


def word_counts(texts) -> collections.Counter:
    return collections.Counter(w for words in CASED.tokenize_to_lists(texts) for w in words)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return learn_vocabulary(word_counts(SENTENCES * 3 + ["files file filed filing"] * 2), max_size=300)


def test_learnt_vocabulary_starts_with_the_reserved_tokens_and_holds_suffix_pieces(vocabulary):
    assert vocabulary.tokens[:4] == RESERVED_TOKENS
    assert 4 < len(vocabulary) <= 300
    assert any(t.startswith(SUFFIX) for t in vocabulary.tokens)
    assert SUFFIX not in vocabulary.tokens
    # Every character of the words is a piece, alone and as a suffix: nothing known becomes <unk>.
    for char in "Áá(O-3«?":
        assert char in vocabulary.tokens and SUFFIX + char in vocabulary.tokens
    # Deterministic: the same counts give the same vocabulary, whatever their order.
    counts = word_counts(SENTENCES * 3 + ["files file filed filing"] * 2)
    assert learn_vocabulary(dict(reversed(list(counts.items()))), max_size=300) == vocabulary


def test_the_learnt_vocabulary_respects_its_size():
    counts = {f"w{i}x{i * 7}": 100 - i % 50 for i in range(400)}
    assert len(learn_vocabulary(counts, max_size=60)) <= 60


def test_case_identifiers_and_numbers_survive_tokenization_and_back(vocabulary):
    ids = TokenIds(CASED, vocabulary)
    texts = SENTENCES + [" ".join(UNSEEN)]
    pieces = ids.token_strings(tf.constant(texts))
    joined = join_pieces(tf.strings.reduce_join(pieces, axis=-1, separator=" ")).numpy()
    assert [t.decode("utf-8") for t in joined] == texts
    assert UNK_ID not in ids(tf.constant(texts)).flat_values.numpy()
    # Cased: "Árabe" and "árabe" are different pieces.
    upper, lower = ids(tf.constant(["Árabe", "árabe"])).to_list()
    assert upper != lower


def test_punctuation_is_glued_not_spelled_into_the_word(vocabulary):
    ids = TokenIds(CASED, vocabulary)
    pieces = [[p.decode("utf-8") for p in row] for row in
              ids.token_strings(tf.constant(["(OLPC)", "OLPC", "¿Dónde?", "prefer-l32r"])).to_list()]
    # The word after an opening symbol is spelled as it is alone; the symbols carry the glue.
    assert pieces[0] == ["(" + SUFFIX] + pieces[1] + [SUFFIX + ")"]
    assert pieces[2][0] == "¿" + SUFFIX and pieces[2][-1] == SUFFIX + "?"
    assert SUFFIX + "-" + SUFFIX in pieces[3]


@pytest.mark.parametrize("text", ["C# and C## and ## x #5 (#5) a##b", "don't 'quoted' ❤️ok", "e.g. 1.34; x--y ...",
                                  "(tty)", "«README»?", "a ( b ) c", "--no-color=always"])
def test_hashes_quotes_and_runs_of_symbols_round_trip(vocabulary, text):
    counts = word_counts([text] * 2)
    tokens = learn_vocabulary(counts + word_counts(SENTENCES), max_size=400)
    pieces = TokenIds(CASED, tokens).token_strings(tf.constant([text]))
    assert join_pieces(tf.strings.reduce_join(pieces, axis=-1, separator=" ")).numpy()[0].decode("utf-8") == text
    assert join_pieces_py([p.decode("utf-8") for p in pieces.to_list()[0]]) == text


def test_empty_texts_have_no_pieces(vocabulary):
    ids = TokenIds(CASED, vocabulary)
    assert ids(tf.constant(["", "  ", "("])).to_list() == [[], [], [vocabulary.tokens.index("(")]]
    assert ids(tf.constant([""])).to_list() == [[]]


def test_a_word_of_unknown_characters_is_one_unk(vocabulary):
    ids = TokenIds(CASED, vocabulary)(tf.constant(["Show 日本 files"])).to_list()[0]
    assert ids.count(UNK_ID) == 1


def test_beam_learns_the_vocabulary_from_the_train_words_counts():
    rows = [Row(str(i), text, split="train") for i, text in enumerate(SENTENCES * 2)]
    rows.append(Row("v", "Valid rows never count zzzz", split="valid"))
    batches = [RowBatch.from_rows(rows[i:i + 4]) for i in range(0, len(rows), 4)]
    expected = learn_vocabulary(word_counts(SENTENCES * 2), max_size=200)
    tokenizer = TokenizerConfig(level="wordpiece", lowercase=False, normalization="NFC")
    for approximate in (False, True):
        with TestPipeline(options=pipeline_options([])) as p:
            vocab = (p | beam.Create(batches).with_output_types(RowBatch)
                     | BuildVocabulary(tokenizer, VocabConfig(max_size=200, wordpiece_words=1000,
                                                              approximate=approximate)))
            assert_that(vocab, equal_to([expected]))
    assert "zzzz" not in expected.tokens and SUFFIX + "z" not in expected.tokens


def wordpiece_config(tmp_path, corpus: str):
    return config_from_dict({
        "task": {"name": "wp", "kind": "seq2seq"},
        "data": {"format": "tsv", "path": corpus, "header": False, "delimiter": "\t", "quoting": "none",
                 "text_column": 0, "target_column": 1},
        "preprocess": {"tokenizer": {"level": "wordpiece", "lowercase": False, "normalization": "NFC"},
                       "max_length": 64, "max_target_length": 64, "num_shards": 1, "batch_size": 4,
                       "source_vocab": {"max_size": 300}, "target_vocab": {"max_size": 300},
                       "splits": {"train": 1.0, "valid": 0.0, "test": 0.0}},
        "train": {"model": {"family": "seq2seq", "cell": "gru", "embedding_dim": 8, "units": 8},
                  "export": {"decode": "greedy"}},
        "output_dir": str(tmp_path / "out"),
    }, source="test")


@pytest.mark.slow
def test_the_saved_model_gives_the_pipelines_ids(tmp_path):
    """One tokenizer: the served graph (FastWordpieceTokenizer inside the SavedModel) reads the
    ids the Beam preprocessing wrote, and its output is text, not pieces."""
    from seqbeam.models.export import export_model
    from seqbeam.models.seq2seq import build_seq2seq

    targets = ["Árabe (OLPC)", "prefer-l32r entra en conflicto con prefer-const16", "Mostrar 42 ficheros.",
               "¿Dónde está el fichero «README»?", "Muestra esta ayuda y termina", "Opción --no-color de GNU tar"]
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("".join(f"{s}\t{t}\n" for s, t in zip(SENTENCES, targets)), encoding="utf-8")
    config = wordpiece_config(tmp_path, str(corpus))
    metadata = preprocess.run_config(config, save_main_session=False)
    data_dir = layout.data_dir(config)
    source_vocab = Vocabulary.load(os.path.join(data_dir, metadata["vocab_files"]["source"]))
    by_id = {r["id"]: r["source"][: r["source_length"][0]] for r in read_examples(data_dir, "train")}
    pipeline_ids = [by_id[line_id(corpus, i + 1)] for i in range(len(SENTENCES))]

    model = build_seq2seq(source_vocab_size=metadata["vocab_sizes"]["source"],
                          target_vocab_size=metadata["vocab_sizes"]["target"],
                          source_length=64, target_length=64, embedding_dim=8, units=8, cell="gru")
    path = export_model(config, model, metadata, data_dir, {}, model_root=str(tmp_path / "model"))
    served = tf.saved_model.load(path).signatures["attention"](text=tf.constant(SENTENCES))
    for i, row in enumerate(served["source_tokens"].numpy().tolist()):
        ids = [source_vocab.tokens.index(t.decode("utf-8")) for t in row if t]
        np.testing.assert_array_equal(ids, pipeline_ids[i])
    assert served["tokens"].numpy().tolist() == [len(ids) for ids in pipeline_ids]
    assert not any(" ##" in t.decode("utf-8") for t in served["text"].numpy())


def test_wordpiece_does_not_make_a_language_model(tmp_path):
    with pytest.raises(ConfigError, match="preprocess.tokenizer.level"):
        config_from_dict({
            "task": {"name": "names", "kind": "lm"},
            "data": {"format": "text", "path": "x.txt"},
            "preprocess": {"tokenizer": {"level": "wordpiece"}},
        }, source="test")
    with pytest.raises(ConfigError, match="wordpiece_words"):
        config_from_dict({
            "task": {"name": "t", "kind": "seq2seq"},
            "data": {"format": "anki", "path": "x.tsv"},
            "preprocess": {"tokenizer": {"level": "wordpiece"}, "source_vocab": {"wordpiece_words": 0}},
        }, source="test")
