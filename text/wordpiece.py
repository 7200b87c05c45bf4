"""WordPiece subwords: the vocabulary learnt from word counts, the tokenizer over it, and the way back.

The vocabulary is learnt by tensorflow-text's learner (the algorithm of BERT's vocabulary)
from the counts of the most frequent train words, which the Beam vocabulary job computes at
any corpus size; learning runs once, on one worker, over a bounded list. Pieces that continue
a word carry the ``##`` prefix; every vocabulary starts with the reserved tokens, so
``<unk>`` (id 1) stands for a word no sequence of pieces can spell.

>>> vocabulary = learn_vocabulary({"Hello": 5, "hello": 3, "world!": 4}, max_size=40)
>>> join_pieces_py(["Hel", "##lo", "world", "##!"])
'Hello world!'
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence, Union

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from seqbeam.text.vocabulary import RESERVED_TOKENS, UNK, Vocabulary

SUFFIX = "##"
# Lowest count threshold the learner's search may try: 2 keeps a piece seen twice, so a small
# corpus still fills its vocabulary (the learner's default, 10, suits corpora of millions).
_LOWER_THRESHOLD = 2
# Longest word (characters) the learner reads; longer ones are still tokenized, piece by piece.
_MAX_WORD_CHARS = 50
# The learner's defaults: refinement rounds per threshold; characters kept (the most frequent).
_ITERATIONS = 4
_MAX_CHARS = 1000


def learn_vocabulary(word_counts: Union[Mapping[str, int], Iterable[tuple[str, int]]], max_size: int) -> Vocabulary:
    """The WordPiece Vocabulary (reserved tokens first, at most ``max_size`` entries) of word counts.

    Every character of the counted words is a piece, alone and as ``##`` suffix, so a word
    of known characters is never ``<unk>``; then come the pieces by count, most frequent
    first. The same counts give the same vocabulary.

    The learner keeps the pieces seen at least a threshold number of times; the threshold
    chosen is the highest that still fills ``max_size`` (the rarest pieces beyond it are cut),
    or the lowest tried when even that falls short (a small corpus).
    """
    pairs = sorted(dict(word_counts).items(), key=lambda item: (-item[1], item[0]))
    pairs = [(w, c) for w, c in pairs if w and SUFFIX not in w and w not in RESERVED_TOKENS]
    if not pairs:
        return Vocabulary(RESERVED_TOKENS)
    params = learner.Params(upper_thresh=None, lower_thresh=_LOWER_THRESHOLD, num_iterations=_ITERATIONS,
                            max_input_tokens=-1, max_token_length=_MAX_WORD_CHARS, max_unique_chars=_MAX_CHARS,
                            vocab_size=max_size, slack_ratio=0.0, include_joiner_token=True, joiner=SUFFIX,
                            reserved_tokens=list(RESERVED_TOKENS))
    words = learner.get_input_words(pairs, params.reserved_tokens, params.max_token_length)
    words = learner.filter_input_words(words, learner.get_allowed_chars(words, params.max_unique_chars), -1)
    # Each word above the one ranked max_size / 4 is a piece, with suffix pieces of its own, so
    # the threshold that fills max_size lies below that word's count: a short search (each
    # round reads every word), where the learner's own starts from the most frequent word.
    low = _LOWER_THRESHOLD
    high = max(low, pairs[min(len(pairs), max(1, max_size // 4)) - 1][1])
    learnt: dict[int, list[str]] = {}
    best = None
    while low <= high:
        threshold = (low + high) // 2
        learnt[threshold] = learner.learn_with_thresh(words, threshold, params)
        if len(learnt[threshold]) >= max_size:
            best, low = threshold, threshold + 1
        else:
            high = threshold - 1
    if best is None:
        best = _LOWER_THRESHOLD
        if best not in learnt:
            learnt[best] = learner.learn_with_thresh(words, best, params)
    pieces, seen = [], set(RESERVED_TOKENS)
    for piece in learnt[best]:
        if piece and piece not in seen and piece != SUFFIX and "\n" not in piece and "\r" not in piece:
            pieces.append(piece)
            seen.add(piece)
    return Vocabulary(RESERVED_TOKENS + tuple(pieces[: max_size - len(RESERVED_TOKENS)]))


def wordpiece_tokenizer(tokens: Sequence[str]) -> tf_text.FastWordpieceTokenizer:
    """The FastWordpieceTokenizer of a vocabulary's tokens (line = id): words -> piece ids (int64)."""
    return tf_text.FastWordpieceTokenizer(vocab=list(tokens), suffix_indicator=SUFFIX, unknown_token=UNK,
                                          no_pretokenization=True, token_out_type=tf.int64)


def join_pieces(texts: tf.Tensor) -> tf.Tensor:
    """Space-joined pieces -> text: ``"Hel ##lo world ##!"`` -> ``"Hello world!"`` (TensorFlow op)."""
    return tf.strings.regex_replace(texts, " " + SUFFIX, "")


def join_pieces_py(pieces: Sequence[str]) -> str:
    """Python twin of :func:`join_pieces` on a list of pieces (tests, debugging)."""
    return " ".join(pieces).replace(" " + SUFFIX, "")
