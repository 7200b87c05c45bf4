"""Task configuration: YAML files validated into typed, frozen dataclasses.

One YAML file per task (``configs/<task>.yaml``) is read by all three jobs. Every key
is checked when the file is loaded: an unknown key, a value of the wrong type or an
out-of-range value raises :class:`ConfigError` naming the key and the file, before any
work starts. ``--set key=value`` overrides are applied to the YAML before validation,
so they are checked the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from typing import Any, Literal, Mapping, Sequence, Union

import yaml


class ConfigError(ValueError):
    """A configuration key is unknown, missing, ill-typed or out of range."""


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """What the task predicts: its kind decides the TFRecord layout and the model family."""

    name: str
    kind: Literal["classifier", "seq2seq", "lm"]
    # Display names of the classes, index = label id (emoji characters for the emoji task).
    classes: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """Number of classes of a classifier task (0 for other kinds)."""
        return len(self.classes)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Synthetic corpus settings for tasks whose data the project generates."""

    name: Literal["dates", "reber"]
    num_rows: int = 10_000
    seed: int = 0
    # Dates only: numeric formats write DD/MM/YYYY when true, MM/DD/YYYY when false; "both":
    # each row its own order, half and half. Every generated row starts with the day-order
    # control token of its order (text/day_order.py), so a model learns to read both.
    day_first: Union[bool, Literal["both"]] = False
    # Dates only: share of inputs with typos, OCR confusions or broken punctuation.
    noise_rate: float = 0.1
    # Dates only: share of inputs in the real-world forms (times of day, zones, ISO timestamps,
    # two-digit years, weekdays, sentences, ...; transforms/date_real_world.py), the rest in
    # the 18 classic formats.
    real_world_rate: float = 0.0
    # Rows per generator shard: shards are generated in parallel, deterministically.
    rows_per_shard: int = 50_000


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the corpus is and how to read its columns.

    ``text_column``, ``target_column``, ``label_column`` and ``id_column`` are column
    names (CSV/TSV with a header, JSONL, Parquet) or 0-based positions (CSV/TSV without
    a header). Without ``id_column`` a row's id is ``<file>:<byte offset of its line>``
    (Parquet: ``<file>:<row>``).
    """

    format: Literal["text", "csv", "tsv", "anki", "aligned", "jsonl", "parquet", "generated"]
    path: str = ""
    # Aligned format only: the file of targets, line i translating line i of ``path``.
    target_path: str = ""
    text_column: Union[str, int] = "text"
    target_column: Union[str, int, None] = None
    label_column: Union[str, int, None] = None
    id_column: Union[str, int, None] = None
    header: bool = True
    delimiter: str = ","
    quoting: Literal["minimal", "none"] = "minimal"
    generator: Union[GeneratorConfig, None] = None


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """How raw text becomes tokens, in Beam and inside the exported model alike."""

    # wordpiece: the letter-and-digit runs and symbols of whitespace words cut into WordPiece
    # subwords (tensorflow_text's FastWordpieceTokenizer) over a vocabulary learnt from the
    # train units' counts; "##" marks the glued pieces (text/wordpiece.py).
    level: Literal["word", "char", "wordpiece"] = "word"
    lowercase: bool = True
    normalization: Literal["NFKC", "NFC", "none"] = "NFKC"


@dataclasses.dataclass(frozen=True)
class VocabConfig:
    """Size limits of one vocabulary, and how it is counted; sizes include the four reserved tokens."""

    max_size: int = 20_000
    min_count: int = 1
    # false: exact top-K (keyed counts summed across workers, then a top-K bounded by K).
    # true: a Misra-Gries heavy-hitters summary of bounded size, for corpora whose distinct
    # tokens fit on no worker; each count is at most N / (capacity + 1) below the truth.
    approximate: bool = False
    # Approximate mode only: the summary tracks capacity_factor * (max_size - 4) tokens and
    # holds at most twice that. 4 cuts the error bound to under a quarter of what a summary
    # of exactly K tokens allows (N / (4K + 1) vs N / (K + 1)) for 8K entries at most.
    capacity_factor: int = 4
    # Pretrained vectors whose words make the vocabulary (word-level classifiers): a registered
    # name (glove-6b-50d, from the seqbeam[glove] extra) or a GloVe text / word2vec / fastText
    # .vec file (local or gs://). The vocabulary is then the reserved tokens, the vectors' words
    # in row order, and the max_size - 4 most frequent train tokens the vectors lack.
    # "" = the corpus vocabulary alone (the top max_size - 4 train tokens).
    vectors: str = ""
    # With vectors: how many of their rows (the first ones; GloVe's are by frequency) give
    # words. 0 = all of them.
    vectors_rows: int = 0
    # WordPiece tokenizer only: how many of the most frequent train units (with their counts)
    # the WordPiece vocabulary of max_size pieces is learnt from. Bounds the counting step as
    # max_size does for a word vocabulary.
    wordpiece_words: int = 20_000


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Train/valid/test fractions; a row's split is a hash of its id and the salt."""

    train: float = 0.8
    valid: float = 0.1
    test: float = 0.1
    salt: str = "seqbeam"


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Settings of the preprocessing job."""

    tokenizer: TokenizerConfig = TokenizerConfig()
    source_vocab: VocabConfig = VocabConfig()
    target_vocab: VocabConfig = VocabConfig()
    # Padded length of the input tokens (classifier, LM, seq2seq source).
    max_length: int = 32
    # Padded length of target_in / target_out (seq2seq only), <start>/<end> included.
    max_target_length: int = 32
    # What to do with a row longer than its padded length.
    overflow: Literal["truncate", "reject"] = "truncate"
    # Rows whose raw text is longer than this are rejected before tokenization.
    max_chars: int = 10_000
    splits: SplitConfig = SplitConfig()
    # Shards per split. 0 lets the runner decide (one file per bundle): no grouping step,
    # so the local runner never holds the whole output in memory.
    num_shards: int = 4
    # Rows tokenized and encoded together in one TensorFlow call.
    batch_size: int = 1024
    # The job fails (naming its first errors) when more than this share of the rows in is
    # rejected as ``processing_error`` (a step raised on the row): a bug or a broken
    # dependency, not bad input. 1 %: a few poison rows pass, a broken step does not.
    max_failure_rate: float = 0.01


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model family a task trains, and its sizes."""

    family: Literal["emojifier_v1", "emojifier_v2", "grammar", "char_lm", "seq2seq"]
    embedding_dim: int = 50
    # LSTM/GRU width (V2, grammar classifier, char LM, seq2seq encoder and decoder).
    units: int = 128
    dropout: float = 0.5
    # Grammar classifier and seq2seq; null: the family's own (grammar: gru, seq2seq: lstm).
    cell: Union[Literal["gru", "lstm"], None] = None
    # Seq2seq only.
    bidirectional: bool = False
    attention: bool = True
    # Emojifiers only: the vectors the embedding starts from, a registered name or a file as
    # preprocess.source_vocab.vectors. "" = preprocess.source_vocab.vectors, or, when that is
    # "" too, an embedding trained from scratch. Given with source_vocab.vectors "", the
    # vocabulary stays the corpus's and only its words get their vectors.
    pretrained_vectors: str = ""
    # Pretrained vectors only: fine-tune them (true) or keep them fixed (false), so that words
    # absent from a small training set keep their place beside their synonyms.
    trainable_embeddings: bool = False
    oov_init: Literal["zeros", "uniform", "normal"] = "normal"


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """How the exported model decodes or samples (seq2seq, LM) when serving."""

    decode: Literal["greedy", "beam"] = "greedy"
    beam_width: int = 4
    # GNMT length normalisation exponent; 0 ranks beams by their summed log-probability.
    length_penalty: float = 0.6
    # LM sampling.
    temperature: float = 1.0
    top_k: int = 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of the training job."""

    model: ModelConfig
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    # The learning rate is multiplied by this after every epoch (1 = constant): big steps
    # first, fine ones at the end.
    learning_rate_decay: float = 1.0
    # Gradient-norm clipping (0 = none): the char LM's classic exploding-gradient guard.
    clipnorm: float = 0.0
    # Epochs without a better validation loss before stopping (0 = never stop early).
    early_stopping_patience: int = 5
    seed: int = 0
    shuffle_buffer: int = 10_000
    # Seq2seq only, one machine: batches of similar lengths, sorted within windows of this
    # many batches and cut to their longest source and target (models/inputs.py); 0 = off.
    length_window: int = 0
    export: ExportConfig = ExportConfig()


@dataclasses.dataclass(frozen=True)
class InferConfig:
    """Settings of the batch-inference job; keys that concern one task say so."""

    # Corpus to annotate, read like ``data``; only its text (and id) column is used.
    # Default: the task's own ``data`` section.
    input: Union[DataConfig, None] = None
    # How predictions are post-processed and written. "auto": emoji for a multi-class
    # classifier, grammar for a binary one, dates for a char-level seq2seq model,
    # translation for a word-level one, names for a language model.
    output: Literal["auto", "emoji", "grammar", "translation", "dates", "names"] = "auto"
    # Exported SavedModel folder; "" = the newest version under <task>/model/.
    model_path: str = ""
    # Rows per model call (RunInference batch sizes).
    min_batch_size: int = 32
    max_batch_size: int = 256
    # Length-aware batching: rows are grouped by character length into buckets with these
    # upper bounds, so a batch is not mostly padding. [] = RunInference's own batching.
    length_buckets: tuple[int, ...] = (8, 16, 24, 32, 48, 64, 96, 128, 256)
    # Rows longer than this many characters are rejected before the model sees them.
    max_chars: int = 2_000
    # Rows with more tokens than the model reads: truncate (and flag) or reject.
    overflow: Literal["truncate", "reject"] = "truncate"
    # Seq2seq: decode as the export was configured ("model"), greedily, or by beam search.
    decode: Literal["model", "greedy", "beam"] = "model"
    # Dates: the day order the model is told (its control token) for rows that do not carry
    # their own: true reads 03/04/2019 as 3 April, false as March 4. Generated rows carry theirs.
    day_first: bool = False
    beam_width: int = 4
    # Predictions less confident than this (probability; exp(score) for seq2seq) are
    # counted as low_confidence.
    min_confidence: float = 0.5
    # Emoji: a sentence gets its emoji inserted only when its probability reaches this.
    emoji_threshold: float = 0.5
    # Names: how many names to sample, and the seed that makes the job reproducible.
    num_samples: int = 1_000
    seed: int = 0
    # Parquet shards of the predictions and of the rejected rows; 0 = one per bundle (no grouping step).
    num_shards: int = 0
    # The job fails (naming its first errors) when more than this share of the rows in is
    # rejected as ``inference_error`` or ``processing_error`` (the model call or a step
    # raised): a broken model, not bad input. 1 %: a few poison rows pass, a broken model does not.
    max_failure_rate: float = 0.01


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Settings of the evaluation stage of ``seqbeam run``."""

    # Labelled rows the predictions are scored against, joined by row id, read like
    # ``data``. Default: the annotated corpus itself when it is generated (it carries its
    # targets), else the task's ``data`` when the annotated corpus is the training corpus.
    reference: Union[DataConfig, None] = None
    # Seq2seq models with attention: how many inputs get an attention heatmap in the report.
    attention_examples: int = 4


# The job stages of ``seqbeam run``, in order, and the config sections each one reads
# (with those of the stages before it): a stage is redone when one of them changes.
STAGES = ("preprocess", "train", "infer", "evaluate")
_STAGE_SECTIONS = {"preprocess": ("task", "data", "preprocess"), "train": ("train",), "infer": ("infer",),
                   "evaluate": ("evaluate",)}


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole task: data + tokenizer + preprocessing + training settings, read by every job."""

    task: TaskConfig
    data: DataConfig
    preprocess: PreprocessConfig = PreprocessConfig()
    # Required by the training job only.
    train: Union[TrainConfig, None] = None
    infer: InferConfig = InferConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    # Outputs go to <output_dir>/<task.name>/; local path or gs://.
    output_dir: str = "runs"

    @property
    def task_dir(self) -> str:
        """Folder holding every output of this task."""
        return f"{self.output_dir.rstrip('/')}/{self.task.name}"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_yaml(self) -> str:
        """The resolved config as YAML, written beside the outputs."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @property
    def output_kind(self) -> str:
        """What the inference job writes: ``infer.output``, or what "auto" makes of the task."""
        if self.infer.output != "auto":
            return self.infer.output
        if self.task.kind == "classifier":
            return "grammar" if self.task.num_classes == 2 else "emoji"
        if self.task.kind == "seq2seq":
            return "dates" if self.preprocess.tokenizer.level == "char" else "translation"
        return "names"

    @property
    def hash(self) -> str:
        """Short stable digest of the whole resolved config (the run summary; outputs carry stage hashes)."""
        return _digest(self.to_dict())

    def stage_hash(self, stage: str) -> str:
        """Digest of the config sections ``stage`` and the stages before it read.

        Outputs of a stage are still valid when its hash is unchanged: changing
        ``infer.emoji_threshold`` redoes inference and evaluation, not training.
        """
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        resolved = self.to_dict()
        sections = [name for s in STAGES[: STAGES.index(stage) + 1] for name in _STAGE_SECTIONS[s]]
        return _digest({name: resolved[name] for name in sections})


def _digest(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def load_config(path: str, overrides: Sequence[str] = ()) -> Config:
    """Reads a task YAML file, applies ``key=value`` overrides and validates everything."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for override in overrides:
        _apply_override(raw, override, path)
    return config_from_dict(raw, source=path)


def config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> Config:
    """Validates plain data (as parsed from YAML) into a :class:`Config`, defaults that follow other keys resolved."""
    config = _build(Config, raw, key="", source=source)
    _check_semantics(config, source)
    return _resolve_defaults(config)


def _resolve_defaults(config: Config) -> Config:
    """``train.model.pretrained_vectors`` "" takes ``preprocess.source_vocab.vectors``."""
    vectors = config.preprocess.source_vocab.vectors
    if config.train is None or config.train.model.pretrained_vectors or not vectors:
        return config
    model = dataclasses.replace(config.train.model, pretrained_vectors=vectors)
    return dataclasses.replace(config, train=dataclasses.replace(config.train, model=model))


def _apply_override(raw: dict, override: str, source: str) -> None:
    key, sep, value = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {override!r}: expected key=value, e.g. preprocess.num_shards=8")
    parts = key.strip().split(".")
    _check_key_path(Config, parts, key, source)
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            return  # an ill-typed section in the file: validation reports it, naming the key
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}: the value is not valid YAML: {e}") from None


def _check_key_path(cls: type, parts: Sequence[str], key: str, source: str) -> None:
    """Fails on an override naming a key that no dataclass along the path has."""
    hints = typing.get_type_hints(cls)
    if parts[0] not in hints:
        raise ConfigError(f"--set {key}: unknown key '{parts[0]}' (config {source})")
    if len(parts) > 1:
        nested = _dataclass_in(hints[parts[0]])
        if nested is None:
            raise ConfigError(f"--set {key}: '{parts[0]}' has no sub-keys (config {source})")
        _check_key_path(nested, parts[1:], key, source)


def _dataclass_in(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _build(cls: type, value: Any, key: str, source: str) -> Any:
    where = f"key '{key}' in {source}" if key else source
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields), key=str)  # YAML keys may be ints or bools
    if unknown:
        name = f"{key}.{unknown[0]}" if key else unknown[0]
        raise ConfigError(
            f"unknown key '{name}' in {source} (known: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, field in fields.items():
        child_key = f"{key}.{name}" if key else name
        if name in value:
            kwargs[name] = _coerce(hints[name], value[name], child_key, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key '{child_key}' in {source}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str, source: str) -> Any:
    """Checks ``value`` against the type ``hint``; nested dataclasses are built."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, source)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is not None and type(None) in options:  # an optional section given: its own error names the key
            options = tuple(option for option in options if option is not type(None))
        errors = []
        for option in options:
            try:
                return _coerce(option, value, key, source)
            except ConfigError as e:
                errors.append(e)
        raise errors[-1] if len(errors) == 1 else ConfigError(
            f"key '{key}' in {source}: {value!r} matches none of {_type_name(hint)}"
        )
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"key '{key}' in {source}: {value!r} is not one of {', '.join(map(repr, choices))}"
            )
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"key '{key}' in {source}: expected a list, got {value!r}")
        (item_type, _) = typing.get_args(hint)
        return tuple(_coerce(item_type, item, f"{key}[{i}]", source) for i, item in enumerate(value))
    if hint is type(None):
        if value is not None:
            raise ConfigError(f"key '{key}' in {source}: expected null, got {value!r}")
        return None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(
            f"key '{key}' in {source}: expected {_type_name(hint)}, got {type(value).__name__} {value!r}"
        )
    return _whole_characters(value, key, source) if hint is str else value


def _whole_characters(text: str, key: str, source: str) -> str:
    r"""``text`` with YAML's UTF-16 escapes of one character (``"\ud83d\ude04"``) joined into it.

    YAML reads such a pair as two lone surrogates, which no file, log or Parquet column can
    hold; a surrogate that is not half of a pair is an error naming the key.
    """
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise ConfigError(f"key '{key}' in {source}: {text!r} holds a lone UTF-16 surrogate") from None


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(repr, typing.get_args(hint)))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def _check_semantics(config: Config, source: str) -> None:
    """Range and cross-key checks that types alone cannot express."""

    def fail(key: str, message: str) -> None:
        raise ConfigError(f"key '{key}' in {source}: {message}")

    task, data, pre = config.task, config.data, config.preprocess
    if not task.name or "/" in task.name:
        fail("task.name", f"{task.name!r} must be a non-empty name without '/'")
    if task.kind == "classifier" and len(task.classes) < 2:
        fail("task.classes", "a classifier needs at least two classes")
    _check_data(data, "data", fail)
    if task.kind == "classifier" and data.format != "generated" and data.label_column is None:
        fail("data.label_column", "a classifier task needs a label column")
    if task.kind == "seq2seq" and data.format not in ("generated", "aligned", "anki") and (
        data.target_column is None
    ):
        fail("data.target_column", "a seq2seq task needs a target column")
    for name in ("source_vocab", "target_vocab"):
        vocab: VocabConfig = getattr(pre, name)
        if vocab.max_size <= 4:
            fail(f"preprocess.{name}.max_size", "must exceed the 4 reserved tokens")
        if vocab.min_count < 1:
            fail(f"preprocess.{name}.min_count", "must be at least 1")
        if vocab.capacity_factor < 1:
            fail(f"preprocess.{name}.capacity_factor", f"must be at least 1, got {vocab.capacity_factor}")
        if vocab.vectors_rows < 0:
            fail(f"preprocess.{name}.vectors_rows", f"must be 0 (all rows) or more, got {vocab.vectors_rows}")
        if vocab.wordpiece_words < 1:
            fail(f"preprocess.{name}.wordpiece_words", f"must be positive, got {vocab.wordpiece_words}")
    _check_vocabulary_vectors(config, fail)
    if pre.tokenizer.level == "wordpiece" and task.kind == "lm":
        fail("preprocess.tokenizer.level", "a language model samples characters: use level 'char'")
    for name in ("max_length", "max_chars", "batch_size"):
        if getattr(pre, name) < 1:
            fail(f"preprocess.{name}", f"must be positive, got {getattr(pre, name)}")
    if pre.max_target_length < 2:
        fail("preprocess.max_target_length", f"must hold <start>/<end> and a token, got {pre.max_target_length}")
    if pre.num_shards < 0:
        fail("preprocess.num_shards", f"must be 0 (one file per bundle) or more, got {pre.num_shards}")
    if not 0.0 <= pre.max_failure_rate <= 1.0:
        fail("preprocess.max_failure_rate", f"must lie in [0, 1], got {pre.max_failure_rate}")
    if config.train is not None:
        _check_train(config, fail)
    _check_infer(config.infer, fail)
    if config.evaluate.reference is not None:
        _check_data(config.evaluate.reference, "evaluate.reference", fail)
    if config.evaluate.attention_examples < 0:
        fail("evaluate.attention_examples", f"must be 0 (none) or more, got {config.evaluate.attention_examples}")
    if config.output_kind not in _OUTPUTS_OF_KIND[task.kind]:
        fail("infer.output", f"{config.infer.output!r} does not fit a {task.kind} task "
             f"(use one of {', '.join(_OUTPUTS_OF_KIND[task.kind])})")
    splits = pre.splits
    for name in ("train", "valid", "test"):
        if not 0.0 <= getattr(splits, name) <= 1.0:
            fail(f"preprocess.splits.{name}", "must lie in [0, 1]")
    if abs(splits.train + splits.valid + splits.test - 1.0) > 1e-6:
        fail("preprocess.splits", "train + valid + test must sum to 1")
    if splits.train == 0.0:
        fail("preprocess.splits.train", "the vocabulary is built from the train split: it cannot be empty")


# The registered vectors names (seqbeam.text.vectors.REGISTERED says where each comes from).
VECTOR_NAMES = ("glove-6b-50d",)


def _check_vectors_source(source: str, key: str, fail) -> None:
    """A vectors source is "", a registered name, or a file path (which holds a '/' or a '.')."""
    if source and source not in VECTOR_NAMES and "/" not in source and "." not in source:
        fail(key, f"{source!r} is not a registered vectors name ({', '.join(VECTOR_NAMES)}) nor a file path "
                  "(give a file as a path with a '/' or an extension, e.g. ./vectors.txt)")


def _check_vocabulary_vectors(config: Config, fail) -> None:
    """Vectors make only a word-level classifier's vocabulary (the emojifiers')."""
    pre = config.preprocess
    if pre.target_vocab.vectors:
        fail("preprocess.target_vocab.vectors", "only the source vocabulary of a word-level classifier takes vectors")
    if not pre.source_vocab.vectors:
        return
    _check_vectors_source(pre.source_vocab.vectors, "preprocess.source_vocab.vectors", fail)
    if config.task.kind != "classifier" or pre.tokenizer.level != "word":
        fail("preprocess.source_vocab.vectors", f"only a word-level classifier's vocabulary takes vectors "
             f"(this task: {config.task.kind}, {pre.tokenizer.level} level)")


def _check_data(data: DataConfig, key: str, fail) -> None:
    """Checks of a corpus section (``data`` or ``infer.input``)."""
    if data.format == "generated":
        if data.generator is None:
            fail(f"{key}.generator", "format 'generated' needs a generator section")
        gen = data.generator
        if gen.num_rows <= 0:
            fail(f"{key}.generator.num_rows", f"must be positive, got {gen.num_rows}")
        if gen.rows_per_shard <= 0:
            fail(f"{key}.generator.rows_per_shard", f"must be positive, got {gen.rows_per_shard}")
        if not 0.0 <= gen.noise_rate <= 1.0:
            fail(f"{key}.generator.noise_rate", f"must lie in [0, 1], got {gen.noise_rate}")
        if not 0.0 <= gen.real_world_rate <= 1.0:
            fail(f"{key}.generator.real_world_rate", f"must lie in [0, 1], got {gen.real_world_rate}")
    elif not data.path:
        fail(f"{key}.path", f"format '{data.format}' reads files: give a path or glob")
    if data.format == "aligned" and not data.target_path:
        fail(f"{key}.target_path", "format 'aligned' needs the target file")
    if len(data.delimiter) != 1:
        fail(f"{key}.delimiter", f"must be one character, got {data.delimiter!r}")


def _check_infer(infer: InferConfig, fail) -> None:
    """Checks of the ``infer`` section."""
    if infer.input is not None:
        _check_data(infer.input, "infer.input", fail)
    for name in ("min_batch_size", "max_batch_size", "max_chars", "beam_width", "num_samples"):
        if getattr(infer, name) < 1:
            fail(f"infer.{name}", f"must be positive, got {getattr(infer, name)}")
    if infer.min_batch_size > infer.max_batch_size:
        fail("infer.min_batch_size", f"{infer.min_batch_size} exceeds infer.max_batch_size {infer.max_batch_size}")
    buckets = infer.length_buckets
    if any(b < 1 for b in buckets) or list(buckets) != sorted(set(buckets)):
        fail("infer.length_buckets", f"must be increasing positive lengths, got {list(buckets)}")
    for name in ("min_confidence", "emoji_threshold"):
        if not 0.0 <= getattr(infer, name) <= 1.0:
            fail(f"infer.{name}", f"must lie in [0, 1], got {getattr(infer, name)}")
    if infer.num_shards < 0:
        fail("infer.num_shards", f"must be 0 (one file per bundle) or more, got {infer.num_shards}")
    if not 0.0 <= infer.max_failure_rate <= 1.0:
        fail("infer.max_failure_rate", f"must lie in [0, 1], got {infer.max_failure_rate}")


_OUTPUTS_OF_KIND = {
    "classifier": ("emoji", "grammar"),
    "seq2seq": ("translation", "dates"),
    "lm": ("names",),
}

_FAMILIES_OF_KIND = {
    "classifier": ("emojifier_v1", "emojifier_v2", "grammar"),
    "seq2seq": ("seq2seq",),
    "lm": ("char_lm",),
}


def _check_train(config: Config, fail) -> None:
    """Checks of the ``train`` section."""
    train, model = config.train, config.train.model
    if model.family not in _FAMILIES_OF_KIND[config.task.kind]:
        fail("train.model.family", f"{model.family!r} cannot train a {config.task.kind} task "
             f"(use one of {', '.join(_FAMILIES_OF_KIND[config.task.kind])})")
    if model.family == "grammar" and config.task.num_classes != 2:
        fail("train.model.family", "the grammar classifier is binary: task.classes needs exactly 2 entries")
    vocab_vectors = config.preprocess.source_vocab.vectors
    if model.pretrained_vectors or vocab_vectors:
        key = "train.model.pretrained_vectors" if model.pretrained_vectors else "preprocess.source_vocab.vectors"
        if model.family not in ("emojifier_v1", "emojifier_v2"):
            fail(key, "only the emojifiers take pretrained word vectors")
        _check_vectors_source(model.pretrained_vectors, "train.model.pretrained_vectors", fail)
        if model.pretrained_vectors and vocab_vectors and model.pretrained_vectors != vocab_vectors:
            fail("train.model.pretrained_vectors",
                 f"{model.pretrained_vectors!r} differs from preprocess.source_vocab.vectors {vocab_vectors!r}, "
                 "whose words make the vocabulary: give the same vectors, or leave it empty to take them")
    for name in ("embedding_dim", "units"):
        if getattr(model, name) < 1:
            fail(f"train.model.{name}", f"must be positive, got {getattr(model, name)}")
    if not 0.0 <= model.dropout < 1.0:
        fail("train.model.dropout", f"must lie in [0, 1), got {model.dropout}")
    for name in ("epochs", "batch_size", "shuffle_buffer"):
        if getattr(train, name) < 1:
            fail(f"train.{name}", f"must be positive, got {getattr(train, name)}")
    if train.learning_rate <= 0:
        fail("train.learning_rate", f"must be positive, got {train.learning_rate}")
    if not 0.0 < train.learning_rate_decay <= 1.0:
        fail("train.learning_rate_decay", f"must lie in (0, 1], got {train.learning_rate_decay}")
    if train.clipnorm < 0:
        fail("train.clipnorm", f"must be 0 (off) or positive, got {train.clipnorm}")
    if train.early_stopping_patience < 0:
        fail("train.early_stopping_patience", "must be 0 (off) or positive")
    if train.length_window < 0:
        fail("train.length_window", f"must be 0 (off) or positive, got {train.length_window}")
    if train.length_window and model.family != "seq2seq":
        fail("train.length_window", "only seq2seq models take batches cut to their longest source")
    export = train.export
    if export.beam_width < 1:
        fail("train.export.beam_width", f"must be positive, got {export.beam_width}")
    if export.temperature <= 0:
        fail("train.export.temperature", f"must be positive, got {export.temperature}")
    if export.top_k < 0:
        fail("train.export.top_k", f"must be 0 (off) or positive, got {export.top_k}")
