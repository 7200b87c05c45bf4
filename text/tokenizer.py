"""The task tokenizer: raw text -> tokens, as TensorFlow ops.

Levels: ``word`` (words and symbols), ``char`` (characters) and ``wordpiece``, where this
tokenizer gives *units*: each whitespace word split into runs of letters and digits and
single symbols ("(OLPC)," -> ``(``, ``OLPC``, ``)``, ``,``). :class:`~seqbeam.text.encoding.TokenIds`
cuts the units into WordPiece subwords and marks which ones were glued to their neighbours
(``text/wordpiece.py``), so a word after punctuation is spelled as it is everywhere else and
joining the pieces still gives back the text exactly.

One :class:`TextTokenizer` is built from the task config and used twice: by the Beam
preprocessing (on batches of rows) and inside the exported SavedModel (on the serving
batch). Both run the same graph, so the same text always gives the same tokens.

>>> tok = TextTokenizer(level="word", lowercase=True, normalization="NFKC")
>>> tok.tokenize_to_lists(["Hello, World!  I don't know."])
[['hello', ',', 'world', '!', 'i', "don't", 'know', '.']]
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

# Word level is `[\w']+|[^\s\w]` made Unicode-aware: RE2's \w is ASCII only, so letters,
# digits and combining marks are named by Unicode class. A symbol keeps the marks that
# follow it (an emoji with its variation selector is one token).
_WORD_CHARS = r"\p{L}\p{N}\p{M}_'"
_SYMBOL = rf"([^\s\p{{Z}}{_WORD_CHARS}]\p{{M}}*)"
# WordPiece units: a symbol (with its marks) stands alone; '#' stays in words, so that the
# "##" glue marks of text/wordpiece.py never meet a symbol '#'; '_' keeps identifiers whole.
WORDPIECE_SYMBOL = r"[^\s\p{Z}\p{L}\p{N}\p{M}_#]\p{M}*"
# Whitespace of any kind and control characters (NUL, ESC, ...) collapse to one space.
_SPACE_OR_CONTROL = r"[\s\p{Z}\p{Cc}]+"


class TextTokenizer:
    """Normalizes (Unicode form, case, whitespace) and splits text into word or char tokens.

    The object holds only its settings, so it pickles to Beam workers and into Keras
    layers; the ops it runs come from ``tensorflow_text``, which this module imports, so
    whoever imports the tokenizer has registered those ops.
    """

    def __init__(self, level: str = "word", lowercase: bool = True, normalization: str = "NFKC"):
        if level not in ("word", "char", "wordpiece"):
            raise ValueError(f"tokenizer level must be 'word', 'char' or 'wordpiece', got {level!r}")
        if normalization not in ("NFKC", "NFC", "none"):
            raise ValueError(f"normalization must be NFKC, NFC or none, got {normalization!r}")
        self.level = level
        self.lowercase = lowercase
        self.normalization = normalization
        self._whitespace_splitter = tf_text.WhitespaceTokenizer()

    @classmethod
    def from_config(cls, config) -> "TextTokenizer":
        """The tokenizer a task's ``preprocess.tokenizer`` section (or any object with its fields) describes."""
        return cls(level=config.level, lowercase=config.lowercase, normalization=config.normalization)

    def get_config(self) -> dict:
        """Settings that rebuild this tokenizer (Keras layers serialize them)."""
        return {"level": self.level, "lowercase": self.lowercase, "normalization": self.normalization}

    def __getstate__(self) -> dict:
        return self.get_config()

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def normalize(self, texts: tf.Tensor) -> tf.Tensor:
        """Unicode normalization, lowercasing and whitespace collapsing of a string tensor."""
        if self.normalization != "none":
            texts = tf_text.normalize_utf8(texts, self.normalization)
        # Before lowercasing: tf.strings.lower stops at the first NUL character.
        texts = tf.strings.strip(tf.strings.regex_replace(texts, _SPACE_OR_CONTROL, " "))
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return texts

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Tokens of each text of a 1-D string tensor, as a ``[batch, (tokens)]`` ragged tensor.

        Level ``wordpiece``: the units of every word (see :meth:`word_units`), which the
        WordPiece vocabulary is learnt from.
        """
        if self.level == "wordpiece":
            return self.word_units(texts).merge_dims(1, 2)
        texts = self.normalize(tf.convert_to_tensor(texts, dtype=tf.string))
        if self.level == "char":
            return tf.strings.unicode_split(texts, "UTF-8")
        # Surrounding each symbol with spaces and splitting on whitespace gives the tokens
        # of `[\w']+|[^\s\w]`, about 20x faster than a regex split with Unicode classes.
        spaced = tf.strings.regex_replace(texts, _SYMBOL, r" \1 ")
        return self._whitespace_splitter.tokenize(spaced)

    def word_units(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """``[batch, (words), (units)]``: each whitespace word split into letter-and-digit runs and symbols.

        The units of a word are written without spaces between them; which of them a
        symbol joins is what :class:`~seqbeam.text.wordpiece.GluedWordPieces` marks.
        """
        words = self._whitespace_splitter.tokenize(self.normalize(tf.convert_to_tensor(texts, dtype=tf.string)))
        return tf_text.regex_split(words, WORDPIECE_SYMBOL, WORDPIECE_SYMBOL)

    def tokenize_to_lists(self, texts: Sequence[str]) -> list[list[str]]:
        """Python convenience: tokens of each text as lists of ``str`` (tests, debugging)."""
        ragged = self.tokenize(tf.constant(list(texts), dtype=tf.string))
        return [[t.decode("utf-8") for t in row] for row in ragged.to_list()]
