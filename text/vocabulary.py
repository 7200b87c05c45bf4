"""Vocabularies: the reserved ids every vocabulary starts with, files and lookup tables.

Every vocabulary starts with the reserved tokens ``0 <pad>``, ``1 <unk>``, ``2 <start>``,
``3 <end>``; the file format is one token per line, line number = id. Files are read and
written with ``tf.io.gfile``, so a local path and a ``gs://`` URL work alike. Building a
vocabulary from a corpus is the Beam side's job (``seqbeam.transforms.vocabulary``).
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Iterable, Mapping

import tensorflow as tf

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
        tf.io.gfile.makedirs(posixpath.dirname(path))
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(("\n".join(self.tokens) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str) -> "Vocabulary":
        """Reads a vocabulary file written by :meth:`save`."""
        with tf.io.gfile.GFile(path, "rb") as f:
            return cls(f.read().decode("utf-8").split("\n")[:-1])

    def lookup_table(self) -> tf.lookup.StaticHashTable:
        """A TensorFlow table mapping token strings to ids, unknown tokens to ``UNK_ID``.

        Built from the tokens in memory; :func:`file_lookup_table` reads a vocabulary file
        instead (and a SavedModel holding that table carries the file as an asset).
        """
        initializer = tf.lookup.KeyValueTensorInitializer(
            keys=tf.constant(self.tokens, dtype=tf.string),
            values=tf.range(len(self.tokens), dtype=tf.int64),
        )
        return tf.lookup.StaticHashTable(initializer, default_value=UNK_ID)


def file_lookup_table(vocab_file: str) -> tf.lookup.StaticHashTable:
    """The lookup table of a vocabulary file (local or gs://), read by TensorFlow: no Python token list.

    Line number = id, unknown tokens -> ``UNK_ID``; a SavedModel holding the table carries the
    file as an asset.
    """
    initializer = tf.lookup.TextFileInitializer(
        vocab_file, key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
    )
    return tf.lookup.StaticHashTable(initializer, default_value=UNK_ID)
