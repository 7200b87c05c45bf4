"""The task tokenizer: word and char level, Unicode handling, graph use."""

import tensorflow as tf

from seqbeam.text.tokenizer import TextTokenizer


def test_word_level_splits_words_from_punctuation():
    tok = TextTokenizer(level="word")
    assert tok.tokenize_to_lists(["Hello, World!  I don't know...", "  "]) == [
        ["hello", ",", "world", "!", "i", "don't", "know", ".", ".", "."],
        [],
    ]


def test_word_level_is_unicode_aware():
    tok = TextTokenizer(level="word")
    assert tok.tokenize_to_lists(["¿Dónde está la estación?"]) == [["¿", "dónde", "está", "la", "estación", "?"]]
    # An emoji keeps its variation selector; NFKC folds the full-width letters.
    assert tok.tokenize_to_lists(["I ❤️ ＰＩＺＺＡ"]) == [["i", "❤️", "pizza"]]


def test_control_characters_and_odd_whitespace_are_spaces():
    tok = TextTokenizer(level="word")
    assert tok.tokenize_to_lists(["a\x00b\tc\u00a0d\u2028e"]) == [["a", "b", "c", "d", "e"]]


def test_case_and_normalization_are_configurable():
    tok = TextTokenizer(level="word", lowercase=False, normalization="none")
    assert tok.tokenize_to_lists(["Ｈi There"]) == [["Ｈi", "There"]]


def test_char_level_keeps_single_spaces():
    tok = TextTokenizer(level="char")
    assert tok.tokenize_to_lists(["  Sep   20,\t7075 "]) == [list("sep 20, 7075")]


def test_tokenize_runs_inside_a_tf_function():
    tok = TextTokenizer(level="word")
    fn = tf.function(tok.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    assert fn(tf.constant(["a b", "c"])).to_list() == [[b"a", b"b"], [b"c"]]


def test_pickles_to_workers():
    import pickle

    tok = pickle.loads(pickle.dumps(TextTokenizer(level="char", lowercase=False)))
    assert tok.get_config() == {"level": "char", "lowercase": False, "normalization": "NFKC"}
    assert tok.tokenize_to_lists(["Ab"]) == [["A", "b"]]
