"""Text -> padded ids as TensorFlow ops: the graph preprocessing and serving share.

:class:`TokenIds` (the task tokenizer followed by a vocabulary lookup) runs in the Beam
preprocessing and inside every exported SavedModel, so the same text gives the same ids in
both; the padding helpers shape those ids for the models.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf
import tensorflow_text as tf_text

from seqbeam.text.tokenizer import TextTokenizer
from seqbeam.text.vocabulary import END_ID, START_ID, Vocabulary, file_lookup_table
from seqbeam.text.wordpiece import GluedWordPieces


class TokenIds(tf.Module):
    """Raw strings -> ragged token ids: the task tokenizer followed by a vocabulary lookup.

    The table comes from ``vocab_file`` when one is given (``vocabulary`` may then be None),
    else from ``vocabulary``'s tokens. At level ``wordpiece`` the tokenizer's units are cut
    into pieces, their glues marked, by :class:`~seqbeam.text.wordpiece.GluedWordPieces` over
    the vocabulary (read from the file: a WordPiece vocabulary is bounded by its
    ``max_size``), which gives the ids itself.
    """

    def __init__(self, tokenizer: TextTokenizer, vocabulary: Optional[Vocabulary], vocab_file: str = ""):
        super().__init__()
        if vocabulary is None and not vocab_file:
            raise ValueError("TokenIds needs a vocabulary or a vocabulary file")
        self.tokenizer = tokenizer
        if tokenizer.level == "wordpiece":
            tokens = (vocabulary or Vocabulary.load(vocab_file)).tokens
            self.pieces = GluedWordPieces(tokens)
            self.vocabulary_tokens = tf.constant(tokens, dtype=tf.string)
        else:
            self.table = file_lookup_table(vocab_file) if vocab_file else vocabulary.lookup_table()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts: tf.Tensor) -> tf.RaggedTensor:
        if self.tokenizer.level == "wordpiece":
            return self.pieces(self.tokenizer.word_units(texts))
        return tf.ragged.map_flat_values(self.table.lookup, self.tokenizer.tokenize(texts))

    def token_strings(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """The tokens the ids stand for, as strings (WordPiece: the pieces; ``<unk>`` for an unknown word)."""
        if self.tokenizer.level == "wordpiece":
            return tf.ragged.map_flat_values(lambda ids: tf.gather(self.vocabulary_tokens, ids), self(texts))
        return self.tokenizer.tokenize(texts)


def pad(ids: tf.RaggedTensor, length: int) -> tf.Tensor:
    """Ids truncated and zero-padded to ``length`` columns (tensorflow-text's pad_model_inputs)."""
    padded, _ = tf_text.pad_model_inputs(ids, max_seq_length=length, pad_value=0)
    return padded


def pad_to_longest(ids: tf.RaggedTensor, max_length: int) -> tf.Tensor:
    """Ids cut to ``max_length`` and zero-padded only to the batch's longest row (at least 1 column).

    What serving feeds the models: a batch of short rows costs short sequences.
    """
    longest = tf.reduce_max(tf.concat([ids.row_lengths(), [1]], axis=0))
    return pad(ids, tf.minimum(longest, max_length))


def shift_for_teacher_forcing(ids: tf.RaggedTensor, length: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(``<start>`` + ids, ids + ``<end>``), each cut to ``length`` so both keep their marker."""
    ids = ids[:, : length - 1]
    batch = ids.nrows()
    start = tf.fill([batch, 1], tf.constant(START_ID, tf.int64))
    end = tf.fill([batch, 1], tf.constant(END_ID, tf.int64))
    return pad(tf.concat([start, ids], axis=1), length), pad(tf.concat([ids, end], axis=1), length)
