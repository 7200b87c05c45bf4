"""WordPiece subwords: the vocabulary learnt from unit counts, the tokenizer over it, and the way back.

The tokenizer's units (``text/tokenizer.py``: letter-and-digit runs and single symbols of
each whitespace word) are cut into pieces by a FastWordpieceTokenizer. ``##`` marks a glue:
before a piece it joins the piece to the one before (``##PC`` continues ``OL``; ``##)``
closes a word), after a symbol it joins the symbol to the unit after (``(##`` opens one),
so ``"(tty)"`` is ``(##``, ``tty``, ``##)``: the word after punctuation is spelled as it is
everywhere else, and joining the pieces gives the text back exactly.

The vocabulary is learnt by tensorflow-text's learner (the algorithm of BERT's vocabulary)
from the counts of the most frequent train units, which the Beam vocabulary job computes at
any corpus size; learning runs once, on one worker, over a bounded list. Every vocabulary
starts with the reserved tokens, so ``<unk>`` (id 1) stands for a unit no sequence of
pieces can spell.

>>> vocabulary = learn_vocabulary({"Hello": 5, "hello": 3, "world": 4, "!": 4}, max_size=40)
>>> join_pieces_py(["(##", "Hel", "##lo", "world", "##!"])
'(Hello world!'
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Mapping, Sequence, Union

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from seqbeam.text.tokenizer import WORDPIECE_SYMBOL
from seqbeam.text.vocabulary import RESERVED_TOKENS, UNK, Vocabulary

SUFFIX = "##"
# A glue mark at the start of the text or piece string, between pieces, or at its end.
_GLUES = rf"^{SUFFIX}| {SUFFIX}|{SUFFIX} |{SUFFIX}$"
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
    or the lowest tried when even that falls short (a small corpus). Every symbol piece also
    comes glued to what follows (``(##``) and on both sides (``##-##``, as in ``prefer-l32r``);
    a piece holding ``##`` past its prefix is left out, as the join would misread it.
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
        body = piece[len(SUFFIX):] if piece.startswith(SUFFIX) else piece
        if body and piece not in seen and SUFFIX not in body and "\n" not in piece and "\r" not in piece:
            pieces.append(piece)
            seen.add(piece)
    glued = [variant for piece in pieces if _is_symbol(piece) for variant in (piece + SUFFIX, SUFFIX + piece + SUFFIX)]
    room = max(0, max_size - len(RESERVED_TOKENS) - len(glued))
    return Vocabulary(RESERVED_TOKENS + tuple(pieces[:room]) + tuple(glued)[: max_size - len(RESERVED_TOKENS)])


def _is_symbol(piece: str) -> bool:
    """Whether a word-start piece is a symbol unit: WORDPIECE_SYMBOL in Python (whose re lacks ``\\p``)."""
    if not piece or piece.startswith(SUFFIX):
        return False
    first, marks = piece[0], piece[1:]
    return (not first.isspace() and first not in "_#" and unicodedata.category(first)[0] not in "LNMZ"
            and all(unicodedata.category(c)[0] == "M" for c in marks))


class GluedWordPieces(tf.Module):
    """Units ``[batch, (words), (units)]`` -> piece ids ``[batch, (pieces)]``, glues marked.

    A FastWordpieceTokenizer cuts each unit; then a symbol glued to the unit before takes
    its ``##`` form (``##)``), one glued to the letters after takes its ``(##`` form, and
    one glued on both sides ``##-##``. A glued form the vocabulary lacks (a rare symbol)
    leaves the plain piece.
    """

    def __init__(self, tokens: Sequence[str]):
        super().__init__()
        self.pieces = wordpiece_tokenizer(tokens)
        index = {token: i for i, token in enumerate(tokens)}
        left = [index.get(SUFFIX + t, i) if t not in RESERVED_TOKENS else i for i, t in enumerate(tokens)]
        right = [index.get(t + SUFFIX, i) if t not in RESERVED_TOKENS else i for i, t in enumerate(tokens)]
        both = [index.get(SUFFIX + t + SUFFIX, left[i]) if t not in RESERVED_TOKENS else i for i, t in enumerate(tokens)]
        self.left = tf.constant(left, tf.int64)
        self.right = tf.constant(right, tf.int64)
        self.both = tf.constant(both, tf.int64)

    def __call__(self, units: tf.RaggedTensor) -> tf.RaggedTensor:
        word_units = units.values  # [words, (units)]
        flat = word_units.flat_values
        symbol = tf.strings.regex_full_match(flat, WORDPIECE_SYMBOL)
        word = word_units.value_rowids()
        position = tf.range(tf.size(flat, out_type=tf.int64)) - tf.gather(word_units.row_starts(), word)
        has_next = position + 1 < tf.gather(word_units.row_lengths(), word)
        next_is_letters = tf.logical_not(tf.concat([symbol[1:], [True]], axis=0))[: tf.size(symbol)]
        glued_left = symbol & (position > 0)
        glued_right = symbol & has_next & next_is_letters

        pieces = self.pieces.tokenize(flat)  # [units, (pieces)]
        unit = pieces.value_rowids()
        k = tf.range(tf.size(pieces.flat_values, out_type=tf.int64)) - tf.gather(pieces.row_starts(), unit)
        left = (k == 0) & tf.gather(glued_left, unit)
        right = (k == tf.gather(pieces.row_lengths(), unit) - 1) & tf.gather(glued_right, unit)
        ids = pieces.flat_values
        ids = tf.where(left & right, tf.gather(self.both, ids),
                       tf.where(left, tf.gather(self.left, ids), tf.where(right, tf.gather(self.right, ids), ids)))
        return units.with_flat_values(pieces.with_flat_values(ids)).merge_dims(1, 3)


def wordpiece_tokenizer(tokens: Sequence[str]) -> tf_text.FastWordpieceTokenizer:
    """The FastWordpieceTokenizer of a vocabulary's tokens (line = id): words -> piece ids (int64)."""
    return tf_text.FastWordpieceTokenizer(vocab=list(tokens), suffix_indicator=SUFFIX, unknown_token=UNK,
                                          no_pretokenization=True, token_out_type=tf.int64)


def join_pieces(texts: tf.Tensor) -> tf.Tensor:
    """Space-joined pieces -> text: ``"(## Hel ##lo world ##!"`` -> ``"(Hello world!"`` (TensorFlow op)."""
    return tf.strings.regex_replace(texts, _GLUES, "")


def join_pieces_py(pieces: Sequence[str]) -> str:
    """Python twin of :func:`join_pieces` on a list of pieces (tests, debugging)."""
    return re.sub(_GLUES, "", " ".join(pieces))
