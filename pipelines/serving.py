"""What the inference and evaluation jobs serve: the corpus to annotate and the model plan.

Both jobs read the same corpus (``infer.input`` or the task's ``data``) and call the same
model through the same signature; this module decides both once, at launch, failing at
once and naming the key when the model does not serve the task.
"""

from __future__ import annotations

import dataclasses
import logging

from seqbeam.configs.schema import Config, DataConfig
from seqbeam.pipelines import layout
from seqbeam.transforms.inference import read_model_card, resolve_model_path
from seqbeam.transforms.postprocess import (
    DateOutputs,
    EmojiOutputs,
    NameOutputs,
    OutputFormat,
    ReberOutputs,
    TranslationOutputs,
)


def input_key(config: Config) -> str:
    """The config section the annotated corpus comes from, named in the reader's errors."""
    return "infer.input" if config.infer.input is not None else "data"


def input_data(config: Config) -> DataConfig:
    """The corpus to annotate: ``infer.input`` or ``data``, reduced to its text and id columns."""
    data = config.infer.input or config.data
    if data.format == "aligned":
        return DataConfig(format="text", path=data.path)
    if data.format == "anki":
        return DataConfig(format="tsv", path=data.path, header=False, text_column=0, quoting="none")
    return dataclasses.replace(data, target_column=None, label_column=None)


@dataclasses.dataclass(frozen=True)
class ServingPlan:
    """Which model the job serves, through which signature, and how its outputs become rows."""

    model_path: str
    signature: str
    output_format: OutputFormat
    # Date models: the day order the model is told (``infer.day_first``).
    day_first: bool = False


def plan_serving(config: Config) -> ServingPlan:
    """Resolves the model and checks it serves this task; fails at once naming the path."""
    model_path = resolve_model_path(config.infer.model_path, layout.model_root(config))
    card = read_model_card(model_path)
    if card.get("task") != config.task.name:
        raise ValueError(f"infer.model_path: {model_path} was exported for task {card.get('task')!r}, "
                         f"not {config.task.name!r}")
    infer = config.infer
    lengths = card["max_lengths"]
    max_tokens = lengths.get("tokens", lengths.get("source", 0))
    common = dict(max_tokens=max_tokens, overflow=infer.overflow, min_confidence=infer.min_confidence)
    kind = config.output_kind
    signature = "serving_default"
    if kind == "emoji":
        output_format = EmojiOutputs(**common, threshold=infer.emoji_threshold)
    elif kind == "grammar":
        output_format = ReberOutputs(**common)
    elif kind == "names":
        output_format, signature = NameOutputs(**common), "sample"
    else:
        word_level = config.preprocess.tokenizer.level == "word"
        output_format = TranslationOutputs(**common, word_level=word_level) if kind == "translation" else DateOutputs(
            **common)
        signature = {"model": "serving_default", "greedy": "greedy", "beam": "beam_search"}[infer.decode]
    if kind == "dates":
        check_day_order(card, model_path, infer.day_first)
    return ServingPlan(model_path, signature, output_format, day_first=infer.day_first)


def check_day_order(card: dict, model_path: str, day_first: bool) -> None:
    """Fails naming ``infer.day_first`` when a date model cannot read dates in that order.

    A date model lists the orders it was trained on in its card (``day_orders``). One
    without them (exported before day orders were a model input, or trained on texts
    without day-order tokens) takes no ``day_first`` and reads dates in the order of its
    training corpus, whatever ``infer.day_first`` says: logged.
    """
    wanted = "day_first" if day_first else "month_first"
    orders = card.get("day_orders") or []
    if not orders:
        logging.getLogger(__name__).warning(
            "the model at %s takes no day-order token: it reads numeric dates in the order of its training corpus "
            "(infer.day_first is not passed to it)", model_path)
    elif wanted not in orders:
        raise ValueError(f"infer.day_first: the model at {model_path} was trained on {' and '.join(orders)} dates "
                         f"only, not {wanted} (train it with data.generator.day_first: both)")
