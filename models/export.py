"""SavedModel export: a serving signature on RAW strings, tokenization inside the graph.

The exported module holds the Keras model, the task tokenizer and the vocabulary tables
(initialised from the vocab files, which the SavedModel carries as assets), so nothing
outside it is needed to serve it: ``tf.saved_model.load(path)`` after
``import tensorflow_text`` and ``.signatures["serving_default"](text=...)``.

Outputs (DESIGN.md): classifiers -> ``label``, ``probabilities``, ``probability`` and,
with class names, ``emoji``; binary classifiers -> ``label``, ``probability``; seq2seq
(translation, dates) -> ``text``, ``score`` (greedy or beam search per config); language
models -> ``text``, ``score`` from a batch of prompts (empty prompt = a fresh name).
Classifiers and seq2seq models also return ``tokens``, the input's token count before
it was cut to the model's length, so a caller can tell a truncated input.

A date model trained with day-order control tokens (generated dates, ``text/day_order.py``)
is a :class:`DateServing`: each of its signatures also takes ``day_first`` (``bool
[batch]``), the order each text's numeric dates read in, so one export serves US and
European dates; the model card lists the orders it was trained on (``day_orders``).

Further signatures: seq2seq models serve ``greedy(text)`` and ``beam_search(text,
beam_width)`` whatever the configured default, and, with attention, ``attention(text)``
(greedy decoding with its attention weights, for heatmaps); language models serve ``sample(text,
seed)``, reproducible for a given ``int32[2]`` seed (``serving_default`` draws a new seed
per call).

An export appears complete or not at all: everything is written to a temporary sibling
``<model_root>/.tmp-<version>-<random>`` (never a version name), renamed to
``<model_root>/<version>``, and ``model_card.json`` is written LAST, into the final folder:
it is the completion marker that inference looks for (``resolve_model_path``). Locally the
rename is atomic; on gs:// it copies then deletes object by object, so a version folder
can exist half-copied for a while, or for good after a crash: without its model card it is
never served.
"""

from __future__ import annotations

import datetime
import json
import logging
import posixpath
import time
import uuid

import keras
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer's ops for the export)
from apache_beam.io.filesystems import FileSystems

from seqbeam.configs.schema import Config
from seqbeam.storage import delete_paths, path_exists
from seqbeam.text.day_order import orders_in, with_day_order
from seqbeam.text.encoding import TokenIds, pad_to_longest
from seqbeam.text.tokenizer import TextTokenizer
from seqbeam.text.vocabulary import Vocabulary
from seqbeam.text.wordpiece import join_pieces

_LOG = logging.getLogger(__name__)
_TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
_BEAM_WIDTH_SPEC = tf.TensorSpec([], tf.int32, name="beam_width")
# Date models: each text's day order (True: 03/04/2019 is 3 April).
_DAY_FIRST_SPEC = tf.TensorSpec([None], tf.bool, name="day_first")
# The completion marker of an export (see the module docstring).
MODEL_CARD = "model_card.json"


class ClassifierServing(tf.Module):
    """Raw texts -> class probabilities, label and class name."""

    def __init__(self, model: keras.Model, token_ids: TokenIds, max_length: int, classes: list[str]):
        super().__init__()
        self.model = model
        self.token_ids = token_ids
        self.max_length = max_length
        self.classes = tf.constant(classes, dtype=tf.string)
        self.binary = model.output_shape[-1] == 1

    @tf.function(input_signature=[_TEXT_SPEC])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """The serving signature."""
        ids = self.token_ids(text)
        probabilities = self.model(pad_to_longest(ids, self.max_length), training=False)
        if self.binary:
            probability = probabilities[:, 0]
            return {"label": tf.cast(probability >= 0.5, tf.int64), "probability": probability,
                    "tokens": ids.row_lengths()}
        label = tf.argmax(probabilities, axis=-1)
        return {"label": label, "probabilities": probabilities, "tokens": ids.row_lengths(),
                "probability": tf.reduce_max(probabilities, axis=-1), "emoji": tf.gather(self.classes, label)}


class LanguageModelServing(tf.Module):
    """Prompts -> sampled continuations (``text``: prompt + sample) and their log-probability."""

    def __init__(self, sampler, tokenizer: TextTokenizer, token_ids: TokenIds, tokens: tuple[str, ...],
                 temperature: float, top_k: int, seed: int):
        super().__init__()
        self.sampler = sampler
        self.tokenizer = tokenizer
        self.token_ids = token_ids
        self.tokens = tf.constant(tokens, dtype=tf.string)
        self.temperature = temperature
        self.top_k = top_k
        self.seed = seed

    @tf.function(input_signature=[_TEXT_SPEC])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """The serving signature: a new seed per call, so repeated calls give new names."""
        seed = tf.stack([tf.constant(self.seed, tf.int32),
                         tf.cast(tf.timestamp() * 1e6 % 2**31, tf.int32)])
        return self.sample(text, seed)

    @tf.function(input_signature=[_TEXT_SPEC, tf.TensorSpec([2], tf.int32, name="seed")])
    def sample(self, text: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """Samples for a given seed: the same prompts and seed give the same names."""
        prompts = self.token_ids(text)
        ids, log_prob = self.sampler.sample(prompts, tf.constant(self.temperature, tf.float32),
                                            tf.constant(self.top_k, tf.int32), seed)
        # Ids 0-3 are <pad>/<unk>/<start>/<end>: only real characters make the name.
        sampled = tf.strings.reduce_join(tf.where(ids > 3, tf.gather(self.tokens, ids), ""), axis=-1)
        return {"text": self.tokenizer.normalize(text) + sampled, "score": log_prob}


class Seq2SeqServing(tf.Module):
    """Source texts -> decoded target texts (``text``) and their score (``score``).

    The decode mode and beam width come from the task config (``train.export``). Tokens
    are joined with ``separator``: nothing for char-level tasks (dates), a space for
    word-level ones (translation, whose punctuation then stands apart: "¿ dónde está ?").
    WordPiece models (``wordpieces``) join their pieces back into words: ``"(", "##OL",
    "##PC", "##)"`` -> ``"(OLPC)"``, case and punctuation as the model wrote them.
    """

    def __init__(self, decoder, source_ids: TokenIds, source_length: int, target_tokens: tuple[str, ...],
                 separator: str, mode: str, beam_width: int, length_penalty: float, wordpieces: bool = False):
        super().__init__()
        self.wordpieces = wordpieces
        self.decoder = decoder
        self.source_ids = source_ids
        self.source_length = source_length
        self.target_tokens = tf.constant(target_tokens, dtype=tf.string)
        self.separator = separator
        self.mode = mode
        self.beam_width = beam_width
        self.length_penalty = length_penalty

    @tf.function(input_signature=[_TEXT_SPEC])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """The serving signature: the decode mode of the config."""
        return self._serve(text)

    @tf.function(input_signature=[_TEXT_SPEC])
    def greedy(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Greedy decoding."""
        return self._greedy(text)

    @tf.function(input_signature=[_TEXT_SPEC, _BEAM_WIDTH_SPEC])
    def beam_search(self, text: tf.Tensor, beam_width: tf.Tensor) -> dict[str, tf.Tensor]:
        """Beam search of the given width, with the config's length penalty."""
        return self._beam_search(text, beam_width)

    @tf.function(input_signature=[_TEXT_SPEC])
    def attention(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Greedy decoding and where it looked: the data of an attention heatmap.

        ``source_tokens`` ``[B, S]`` (the tokens the model read, "" as padding),
        ``target_tokens`` ``[B, T]`` (the decoded tokens, "" after the last one) and
        ``weights`` ``[B, T, S]``: row ``t`` is the attention over the source when target
        token ``t`` was chosen (the row after the last token is the ``<end>`` step).
        """
        return self._attention(text)

    def _serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        if self.mode == "beam":
            return self._beam_search(text, tf.constant(self.beam_width, tf.int32))
        return self._greedy(text)

    def _greedy(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        source = self.source_ids(text)
        ids, score = self.decoder.greedy(pad_to_longest(source, self.source_length))
        return self._outputs(ids, score, source)

    def _beam_search(self, text: tf.Tensor, beam_width: tf.Tensor) -> dict[str, tf.Tensor]:
        source = self.source_ids(text)
        ids, score = self.decoder.beam_search(pad_to_longest(source, self.source_length), beam_width,
                                              tf.constant(self.length_penalty, tf.float32))
        return self._outputs(ids, score, source)

    def _attention(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        source = self.source_ids(text)
        padded = pad_to_longest(source, self.source_length)
        ids, score, weights = self.decoder.greedy_attention(padded)
        tokens = self.source_ids.token_strings(text)[:, : tf.shape(padded)[1]]
        source_tokens = tokens.to_tensor(default_value="", shape=tf.shape(padded, out_type=tf.int64))
        target_tokens = tf.where(ids > 3, tf.gather(self.target_tokens, ids), "")
        return {**self._outputs(ids, score, source), "source_tokens": source_tokens,
                "target_tokens": target_tokens, "weights": weights}

    def _outputs(self, ids: tf.Tensor, score: tf.Tensor, source: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        tokens = tf.ragged.boolean_mask(tf.gather(self.target_tokens, ids), ids > 3)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=self.separator)
        if self.wordpieces:
            text = join_pieces(text)
        return {"text": text, "score": score, "tokens": source.row_lengths()}


class DateServing(Seq2SeqServing):
    """A date model trained with day-order control tokens: every signature also takes ``day_first``.

    ``day_first`` (``bool [batch]``) says how each text's numeric dates read (True:
    ``03/04/2019`` is 3 April); its token goes in front of the text (``text/day_order.py``)
    unless the text starts with one already. ``day_orders``: the orders the model was
    trained on (``month_first``, ``day_first``), written in the model card.
    """

    def __init__(self, *args, day_orders: tuple[str, ...], **kwargs):
        super().__init__(*args, **kwargs)
        self.day_orders = tuple(day_orders)

    @tf.function(input_signature=[_TEXT_SPEC, _DAY_FIRST_SPEC])
    def serve(self, text: tf.Tensor, day_first: tf.Tensor) -> dict[str, tf.Tensor]:
        """The serving signature: the decode mode of the config."""
        return self._serve(with_day_order(text, day_first))

    @tf.function(input_signature=[_TEXT_SPEC, _DAY_FIRST_SPEC])
    def greedy(self, text: tf.Tensor, day_first: tf.Tensor) -> dict[str, tf.Tensor]:
        """Greedy decoding."""
        return self._greedy(with_day_order(text, day_first))

    @tf.function(input_signature=[_TEXT_SPEC, _BEAM_WIDTH_SPEC, _DAY_FIRST_SPEC])
    def beam_search(self, text: tf.Tensor, beam_width: tf.Tensor, day_first: tf.Tensor) -> dict[str, tf.Tensor]:
        """Beam search of the given width, with the config's length penalty."""
        return self._beam_search(with_day_order(text, day_first), beam_width)

    @tf.function(input_signature=[_TEXT_SPEC, _DAY_FIRST_SPEC])
    def attention(self, text: tf.Tensor, day_first: tf.Tensor) -> dict[str, tf.Tensor]:
        """Greedy decoding and where it looked (see :meth:`Seq2SeqServing.attention`); the
        ``source_tokens`` start with the day-order token and its space."""
        return self._attention(with_day_order(text, day_first))


def build_serving_module(config: Config, model: keras.Model, metadata: dict, data_dir: str) -> tf.Module:
    """The tf.Module whose ``serve`` function becomes the SavedModel's serving signature."""
    tokenizer = TextTokenizer.from_config(config.preprocess.tokenizer)
    family = config.train.model.family
    if family in ("emojifier_v1", "emojifier_v2", "grammar"):
        token_ids = _token_ids(tokenizer, data_dir, metadata, "tokens")
        return ClassifierServing(model, token_ids, metadata["max_lengths"]["tokens"], list(metadata["classes"]))
    if family == "char_lm":
        from seqbeam.models.char_lm import CharSampler

        token_ids = _token_ids(tokenizer, data_dir, metadata, "tokens")
        vocabulary = Vocabulary.load(posixpath.join(data_dir, metadata["vocab_files"]["tokens"]))
        export = config.train.export
        return LanguageModelServing(CharSampler(model, metadata["max_lengths"]["tokens"]), tokenizer, token_ids,
                                    vocabulary.tokens, export.temperature, export.top_k, config.train.seed)
    from seqbeam.models.decoding import Seq2SeqDecoder

    export = config.train.export
    target = Vocabulary.load(posixpath.join(data_dir, metadata["vocab_files"]["target"]))
    source_path = posixpath.join(data_dir, metadata["vocab_files"]["source"])
    source_vocabulary = Vocabulary.load(source_path)
    source_ids = TokenIds(tokenizer, source_vocabulary, vocab_file=source_path)
    arguments = dict(separator="" if tokenizer.level == "char" else " ", mode=export.decode,
                     beam_width=export.beam_width, length_penalty=export.length_penalty,
                     wordpieces=tokenizer.level == "wordpiece")
    decoder = Seq2SeqDecoder(model, metadata["max_lengths"]["target"])
    # A model trained on texts with day-order tokens (generated dates) is told the order when served.
    day_orders = orders_in(source_vocabulary.tokens)
    if day_orders:
        return DateServing(decoder, source_ids, metadata["max_lengths"]["source"], target.tokens, **arguments,
                           day_orders=day_orders)
    return Seq2SeqServing(decoder, source_ids, metadata["max_lengths"]["source"], target.tokens, **arguments)


def _token_ids(tokenizer: TextTokenizer, data_dir: str, metadata: dict, name: str) -> TokenIds:
    # The table is read from the file (and the export carries it as an asset): no Python token list.
    path = posixpath.join(data_dir, metadata["vocab_files"][name])
    return TokenIds(tokenizer, None, vocab_file=path)


def _signatures(module: tf.Module) -> dict:
    signatures = {"serving_default": module.serve}
    if isinstance(module, Seq2SeqServing):
        signatures.update(greedy=module.greedy, beam_search=module.beam_search)
        if module.decoder.has_attention:
            signatures["attention"] = module.attention
    elif isinstance(module, LanguageModelServing):
        signatures["sample"] = module.sample
    return signatures


def export_model(config: Config, model: keras.Model, metadata: dict, data_dir: str, metrics: dict,
                 model_root: str) -> str:
    """Writes ``<model_root>/<version>/`` (SavedModel, assets, model_card.json last); returns its path.

    The version is the export time in seconds (the next free second if that version
    exists). A failed export removes what it wrote.
    """
    root = model_root
    module = build_serving_module(config, model, metadata, data_dir)
    card = model_card(config, metadata, metrics, sorted(_signatures(module)),
                      day_orders=getattr(module, "day_orders", ()))
    version = _free_version(root, int(time.time()))
    staging = posixpath.join(root, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    path = posixpath.join(root, version)
    moved = False
    try:
        tf.saved_model.save(module, staging, signatures=_signatures(module))
        _move_into_place(staging, path)
        moved = True
        write_model_card(path, card)
    except BaseException:
        # A move that failed half-way on gs:// leaves objects at `path` without a card: never
        # served, and never merged into (the next export takes the next free second).
        _remove_quietly([staging, path] if moved else [staging])
        raise
    return path


def _move_into_place(staging: str, path: str) -> None:
    """Renames the staging folder to the version folder: one atomic rename on a disk; on an
    object store (gs://, no folders), each object copied then deleted, by Beam's rename."""
    if FileSystems.get_filesystem(staging).has_dirs():
        FileSystems.rename([staging], [path])
        return
    sources = [m.path for m in FileSystems.match([staging.rstrip("/") + "/**"])[0].metadata_list]
    FileSystems.rename(sources, [path + source[len(staging):] for source in sources])
    delete_paths([staging])  # folder marker objects, if the writer left any


def model_card(config: Config, metadata: dict, metrics: dict, signatures: list[str],
               day_orders: tuple[str, ...] = ()) -> dict:
    """What inference needs to know about an export besides the SavedModel (task, lengths, classes,
    and for a date model the day orders it reads, its signatures then taking ``day_first``)."""
    return {
        "task": config.task.name,
        "family": config.train.model.family,
        "config_hash": config.stage_hash("train"),
        "data_config_hash": metadata["config_hash"],
        "vocab_sizes": metadata["vocab_sizes"],
        "max_lengths": metadata["max_lengths"],
        "classes": metadata["classes"],
        "metrics": metrics,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "signatures": signatures,
        "day_orders": list(day_orders),
    }


def write_model_card(path: str, card: dict) -> None:
    """Writes the card into an export folder: the last file of an export (an object appears whole on gs://)."""
    with tf.io.gfile.GFile(posixpath.join(path, MODEL_CARD), "w") as f:
        f.write(json.dumps(card, indent=2, ensure_ascii=False) + "\n")


def _free_version(root: str, seconds: int) -> str:
    """``seconds`` as a version name, or the next second without a folder (two exports in one second)."""
    while path_exists(posixpath.join(root, str(seconds))):
        seconds += 1
    return str(seconds)


def _remove_quietly(paths: list[str]) -> None:
    try:
        delete_paths(paths)
    except Exception as e:  # the export's own error is the one to report; what is left is never served
        _LOG.warning("could not remove the unfinished export %s: %s", paths, e)
