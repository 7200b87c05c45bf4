"""From a task config and its metadata.json to a compiled model and its (x, y, weights) data.

One place knows which builder, loss and feature mapping each model family uses, so the
training job stays the same for every task.
"""

from __future__ import annotations

import logging
import math
import posixpath
from typing import Callable

import keras
import tensorflow as tf

from seqbeam.configs.schema import Config, ConfigError

_LOG = logging.getLogger(__name__)


def _label_pairs(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
    return features["tokens"], features["label"]


def training_pairs(config: Config) -> Callable[[dict], tuple]:
    """Maps a batch of parsed features to what ``model.fit`` takes for the task's family."""
    family = config.train.model.family
    if family == "char_lm":
        from seqbeam.models.char_lm import lm_training_pairs

        return lm_training_pairs
    if family == "seq2seq":
        from seqbeam.models.seq2seq import seq2seq_training_pairs

        return seq2seq_training_pairs
    return _label_pairs


def learning_rate(config: Config, metadata: dict):
    """``train.learning_rate``, or with ``train.learning_rate_decay`` < 1 a schedule multiplying it by
    the decay after every epoch (an epoch: the training rows once, in global batches of the strategy
    in scope)."""
    train = config.train
    if train.learning_rate_decay == 1.0:
        return train.learning_rate
    global_batch = train.batch_size * tf.distribute.get_strategy().num_replicas_in_sync
    steps = max(1, math.ceil(metadata["rows"]["train"] / global_batch))
    return keras.optimizers.schedules.ExponentialDecay(train.learning_rate, decay_steps=steps,
                                                       decay_rate=train.learning_rate_decay, staircase=True)


def build_model(config: Config, metadata: dict, data_dir: str) -> keras.Model:
    """The compiled model of the task, sized from metadata.json (call inside the strategy scope)."""
    train, model_config = config.train, config.train.model
    family = model_config.family
    sizes, lengths = metadata["vocab_sizes"], metadata["max_lengths"]
    clipnorm = train.clipnorm or None
    rate = learning_rate(config, metadata)
    if family in ("emojifier_v1", "emojifier_v2"):
        from seqbeam.models import classifiers

        embedding = _pretrained_embedding(config, data_dir, metadata)
        common = dict(vocab_size=sizes["tokens"], num_classes=len(metadata["classes"]),
                      max_length=lengths["tokens"], embedding_dim=model_config.embedding_dim,
                      embedding_layer=embedding)
        if family == "emojifier_v1":
            model = classifiers.build_emojifier_v1(**common)
        else:
            model = classifiers.build_emojifier_v2(**common, lstm_units=model_config.units,
                                                   dropout=model_config.dropout)
        return classifiers.compile_classifier(model, learning_rate=rate)
    if family == "grammar":
        from seqbeam.models import classifiers

        model = classifiers.build_grammar_classifier(
            vocab_size=sizes["tokens"], max_length=lengths["tokens"], embedding_dim=model_config.embedding_dim,
            units=model_config.units, cell=model_config.cell or "gru")
        return classifiers.compile_classifier(model, learning_rate=rate, binary=True)
    if family == "char_lm":
        from seqbeam.models import char_lm

        model = char_lm.build_char_lm(vocab_size=sizes["tokens"], max_length=lengths["tokens"],
                                      embedding_dim=model_config.embedding_dim, units=model_config.units)
        return char_lm.compile_char_lm(model, learning_rate=rate, clipnorm=clipnorm)
    from seqbeam.models import seq2seq

    model = seq2seq.build_seq2seq(
        source_vocab_size=sizes["source"], target_vocab_size=sizes["target"],
        source_length=lengths["source"], target_length=lengths["target"],
        embedding_dim=model_config.embedding_dim, units=model_config.units,
        bidirectional=model_config.bidirectional, attention=model_config.attention,
        dropout=model_config.dropout, cell=model_config.cell or "lstm")
    return seq2seq.compile_seq2seq(model, learning_rate=rate, clipnorm=clipnorm)


def _pretrained_embedding(config: Config, data_dir: str, metadata: dict):
    """The frozen or trainable pretrained embedding the config asks for, or None.

    A missing vectors file or package is a ConfigError naming ``train.model.pretrained_vectors``.
    """
    model_config = config.train.model
    if not model_config.pretrained_vectors:
        return None
    from seqbeam.models.embeddings import load_pretrained_vectors, pretrained_embedding
    from seqbeam.text.vectors import VectorsNotInstalled
    from seqbeam.text.vocabulary import Vocabulary

    vocabulary = Vocabulary.load(posixpath.join(data_dir, metadata["vocab_files"]["tokens"]))
    try:
        vectors = load_pretrained_vectors(model_config.pretrained_vectors, vocabulary.tokens,
                                          oov_init=model_config.oov_init, seed=config.train.seed)
    except (VectorsNotInstalled, FileNotFoundError) as error:
        raise ConfigError(f"train.model.pretrained_vectors: {error}") from None
    return pretrained_embedding(vectors, trainable=model_config.trainable_embeddings)
