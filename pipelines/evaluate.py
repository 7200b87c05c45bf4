"""The evaluation stage: predictions joined by row id with labelled rows -> ``<task>/eval/metrics.json``.

    predictions/*.parquet -> (id, prediction) ----------------------------------+
    reference rows (validated, split by the id hash as in preprocessing) -> (id, truth)
        -> CoGroupByKey -> scored rows per split -> the task's metric CombineFn
        -> metrics.json (written last, by the pipeline itself: the job runs on any runner)

Per task: classifiers -> accuracy, per-class precision/recall/F1, confusion matrix;
translation -> BLEU and chrF (sacrebleu); dates -> exact match on clean and noisy inputs
and per input format; names -> novelty and length distribution against the training names
(no reference needed). Metrics are reported for ``all`` scored rows and, when the
annotated corpus is the training corpus, for its held-out ``test`` split. A seq2seq
model with attention also gets ``eval/attention.json``: a few inputs with the decoder's
attention weights, drawn as heatmaps by the report.

    seqbeam evaluate --config configs/translate.yaml [--set key=value ...] [Beam flags]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import time
from typing import Any, Iterator, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from seqbeam.configs.schema import Config, DataConfig, load_config
from seqbeam.pipelines import layout
from seqbeam.pipelines.options import job_parser, pipeline_options
from seqbeam.pipelines.serving import plan_serving
from seqbeam.storage import delete_paths, join_path, read_json, write_json
from seqbeam.text.day_order import ORDER_NAMES
from seqbeam.transforms.metrics import (
    ClassificationMetrics,
    DateMetrics,
    NameMetrics,
    TranslationMetrics,
    length_summary,
)
from seqbeam.transforms.rows import ReadValidBatches, TrainingNames
from seqbeam.transforms.synthetic import generate_examples, num_shards
from seqbeam.transforms.validate import assign_split

_LOG = logging.getLogger(__name__)
ALL = "all"
COUNTS = "counts"


@dataclasses.dataclass(frozen=True)
class Reference:
    """Where the ground truth comes from and which splits are reported."""

    data: Optional[DataConfig]
    description: str
    splits: tuple[str, ...] = (ALL,)


def reference_of(config: Config) -> Reference:
    """The labelled rows the predictions are scored against (``evaluate.reference`` or a default).

    Default: a generated annotated corpus carries its own targets; an annotated corpus
    read from the training files is scored against the task's ``data`` (labels and
    targets), with its held-out ``test`` split reported apart. Otherwise there is no
    reference and only reference-free figures are reported.
    """
    if config.output_kind == "names":
        return Reference(None, "none needed: sampled names are compared with the training names")
    annotated = config.infer.input or config.data
    if config.evaluate.reference is not None:
        return Reference(config.evaluate.reference, f"evaluate.reference ({_describe(config.evaluate.reference)})")
    if annotated.format == "generated":
        return Reference(annotated, f"the annotated corpus ({_describe(annotated)})")
    if annotated.path == config.data.path and annotated.target_path == config.data.target_path:
        return Reference(config.data, f"the training corpus ({_describe(config.data)})", (ALL, "test"))
    return Reference(None, "none: set evaluate.reference to labelled rows of the annotated corpus")


def _describe(data: DataConfig) -> str:
    if data.format == "generated":
        gen = data.generator
        return f"generated {gen.name}, {gen.num_rows} rows, seed {gen.seed}"
    return f"{data.format} {data.path}"


# ---------------------------------------------------------------------------------------
# Predictions and references as (id, value) pairs


def prediction_pairs(kind: str, table) -> Iterator[tuple[str, Any]]:
    """``(id, prediction)`` of a batch of prediction rows (a pyarrow Table) for scoring.

    Emoji rows hold several sentences: a row's label is that of its most confident sentence.
    """
    ids = table.column("id").to_pylist()
    if kind == "emoji":
        for row_id, sentences in zip(ids, table.column("sentences").to_pylist()):
            if sentences:
                yield row_id, max(sentences, key=lambda s: s["probability"])["label"]
    elif kind == "grammar":
        yield from zip(ids, (int(g) for g in table.column("grammatical").to_pylist()))
    elif kind == "translation":
        yield from zip(ids, table.column("translation").to_pylist())
    elif kind == "dates":
        yield from zip(ids, zip(table.column("iso_date").to_pylist(), table.column("valid").to_pylist()))
    else:
        raise ValueError(f"no reference-based scoring for output kind {kind!r}")


def reference_pairs(kind: str, batch) -> Iterator[tuple[str, tuple[str, Any]]]:
    """``(id, (split, truth))`` of a validated RowBatch: the label, the target, or (date, format, noisy)."""
    if kind in ("emoji", "grammar"):
        truths = batch.labels
    elif kind == "translation":
        truths = batch.targets
    else:
        truths = [(target, "", None) for target in batch.targets]
    yield from zip(batch.ids, zip(batch.splits, truths))


def generated_date_pairs(shard: int, generator, splits) -> Iterator[tuple[str, tuple[str, Any]]]:
    """``(id, (split, (iso, format, noisy)))`` of one shard of a generated date corpus."""
    for row_id, example in generate_examples(generator, shard):
        yield row_id, (assign_split(row_id, splits), (example.iso, example.format, example.noisy))


def score(kind: str, prediction: Any, truth: Any) -> Any:
    """What the task's metric CombineFn takes for one prediction and its truth."""
    if kind in ("emoji", "grammar"):
        return truth, prediction
    if kind == "translation":
        return prediction, truth
    iso, valid = prediction
    target, fmt, noisy = truth
    return fmt, noisy, iso == target, bool(valid)


@beam.typehints.with_output_types(tuple[str, Any])
class ScoreJoined(beam.DoFn):
    """``(id, {"prediction": [...], "reference": [...]})`` -> ``(split, scored)`` rows and join counts."""

    def __init__(self, kind: str, splits: tuple[str, ...]):
        self._kind = kind
        self._splits = splits

    def process(self, joined):
        _, groups = joined
        predictions, references = groups["prediction"], groups["reference"]
        if not predictions:
            yield beam.pvalue.TaggedOutput(COUNTS, "reference_not_predicted")
            return
        if not references:
            yield beam.pvalue.TaggedOutput(COUNTS, "without_reference")
            return
        yield beam.pvalue.TaggedOutput(COUNTS, "with_reference")
        split, truth = references[0]
        scored = score(self._kind, predictions[0], truth)
        yield ALL, scored
        if split in self._splits and split != ALL:
            yield split, scored


def metric_fn(config: Config) -> beam.CombineFn:
    """The metric CombineFn of the task's output kind."""
    kind = config.output_kind
    if kind in ("emoji", "grammar"):
        return ClassificationMetrics(config.task.classes)
    if kind == "translation":
        return TranslationMetrics()
    if kind == "dates":
        from seqbeam.transforms.date_generator import ALL_FORMS

        return DateMetrics(ALL_FORMS)
    return NameMetrics()


# ---------------------------------------------------------------------------------------
# The pipeline


class ReadPredictions(beam.PTransform):
    """The inference job's Parquet predictions, as pyarrow Tables."""

    def __init__(self, config: Config):
        super().__init__()
        self._pattern = join_path(layout.predictions_dir(config), "*.parquet")

    def expand(self, pbegin):
        return pbegin | "ReadParquet" >> beam.io.ReadFromParquetBatched(self._pattern)


class ReadReference(beam.PTransform):
    """The reference rows as ``(id, (split, truth))``."""

    def __init__(self, config: Config, data: DataConfig):
        super().__init__()
        self._config = dataclasses.replace(config, data=data)

    def expand(self, pbegin):
        data, kind = self._config.data, self._config.output_kind
        if kind == "dates" and data.format == "generated":
            return (
                pbegin
                | "ShardIndices" >> beam.Create(range(num_shards(data.generator)))
                | "SpreadShards" >> beam.Reshuffle()
                | "GenerateDates" >> beam.FlatMap(generated_date_pairs, data.generator, self._config.preprocess.splits)
            )
        batches = (pbegin | "ReadRows" >> ReadValidBatches(self._config))["batches"]
        return batches | "TruthById" >> beam.FlatMap(lambda batch: reference_pairs(kind, batch))


class ScorePredictions(beam.PTransform):
    """Prediction tables -> ``{"splits": PCollection of (split, metrics)}, "counts": (name, n)}``."""

    def __init__(self, config: Config, reference: Reference):
        super().__init__()
        self._config = config
        self._reference = reference

    def expand(self, tables):
        kind = self._config.output_kind
        if kind == "names":
            scored = tables | "NamesNovel" >> beam.FlatMap(
                lambda t: [(ALL, pair) for pair in zip(t.column("name").to_pylist(), t.column("novel").to_pylist())])
            counts = tables | "CountPredictions" >> beam.Map(lambda t: ("without_reference", t.num_rows))
        elif self._reference.data is None:
            scored = tables.pipeline | "NothingToScore" >> beam.Create([])
            counts = tables | "CountPredictions" >> beam.Map(lambda t: ("without_reference", t.num_rows))
        else:
            predictions = tables | "PredictionById" >> beam.FlatMap(lambda t: prediction_pairs(kind, t))
            truths = tables.pipeline | "Reference" >> ReadReference(self._config, self._reference.data)
            joined = (
                {"prediction": predictions, "reference": truths}
                | "JoinById" >> beam.CoGroupByKey()
                | "Score" >> beam.ParDo(ScoreJoined(kind, self._reference.splits)).with_outputs(COUNTS, main="scored")
            )
            scored, counts = joined.scored, joined[COUNTS] | "One" >> beam.Map(lambda name: (name, 1))
        return {
            "splits": scored | "Metrics" >> beam.CombinePerKey(metric_fn(self._config)),
            "counts": counts | "SumCounts" >> beam.CombinePerKey(sum),
        }


def assemble_metrics(_, config: Config, reference: Reference, splits: dict, counts: dict,
                     training_length: Optional[dict] = None) -> dict:
    """The metrics.json document from the per-split metrics and the join counts."""
    splits = dict(splits)
    if training_length is not None:
        splits.setdefault(ALL, {})["training_length"] = training_length
    with_reference, without = counts.get("with_reference", 0), counts.get("without_reference", 0)
    return {
        "task": config.task.name,
        "kind": config.output_kind,
        "config_hash": config.stage_hash("evaluate"),
        "reference": reference.description,
        "predictions": layout.predictions_dir(config),
        "rows": {"predictions": with_reference + without, "with_reference": with_reference,
                 "without_reference": without, "reference_not_predicted": counts.get("reference_not_predicted", 0)},
        "splits": {name: splits[name] for name in (ALL, "test") if name in splits},
    }


def build_pipeline(p: beam.Pipeline, config: Config) -> None:
    """Adds the evaluation graph to ``p``: it ends by writing ``metrics.json``."""
    reference = reference_of(config)
    tables = p | "ReadPredictions" >> ReadPredictions(config)
    scored = tables | "Score" >> ScorePredictions(config, reference)
    side = {"splits": beam.pvalue.AsDict(scored["splits"]), "counts": beam.pvalue.AsDict(scored["counts"])}
    if config.output_kind == "names":
        lengths = (
            p
            | "TrainingNames" >> TrainingNames(config)
            | "TrainingLengths" >> beam.Map(lambda names: length_summary(collections.Counter(len(n) for n in names)))
        )
        side["training_length"] = beam.pvalue.AsSingleton(lengths)
    (
        p
        | "Once" >> beam.Create([None])
        | "Assemble" >> beam.Map(assemble_metrics, config, reference, **side)
        | "WriteMetrics" >> beam.Map(write_json, layout.metrics_path(config))
    )


# ---------------------------------------------------------------------------------------
# Attention heatmap data (driver side: a handful of model calls)


# How a heatmap labels the day-order token a date model reads first.
_ORDER_LABELS = {token: f"<{name}>" for token, name in ORDER_NAMES.items()}


def attention_examples(config: Config, model_path: str) -> list[dict]:
    """A few annotated inputs decoded greedily with their attention weights ([] without attention).

    Inputs are the first predictions' sources, preferring ones of 3 to 12 tokens (a heatmap
    a person can read).
    """
    count = config.evaluate.attention_examples
    if config.output_kind not in ("translation", "dates") or not count:
        return []
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops before loading)

    model = tf.saved_model.load(model_path)
    if "attention" not in model.signatures:
        return []
    column = "source" if config.output_kind == "translation" else "raw"
    texts = _first_predictions(config, column, limit=200)
    readable = [t for t in texts if 3 <= len(t.split() if config.output_kind == "translation" else t) <= 40]
    texts = (readable or texts)[:count]
    if not texts:
        return []
    signature = model.signatures["attention"]
    inputs = {"text": tf.constant(texts)}
    if "day_first" in signature.structured_input_signature[1]:  # a date model: told the job's order
        inputs["day_first"] = tf.fill([len(texts)], config.infer.day_first)
    out = signature(**inputs)
    examples = []
    for i, text in enumerate(texts):
        source = [_ORDER_LABELS.get(t, t) for t in (t.decode("utf-8") for t in out["source_tokens"][i].numpy() if t)]
        target = [t.decode("utf-8") for t in out["target_tokens"][i].numpy() if t]
        steps = min(len(target) + 1, out["weights"].shape[1])  # the decoded tokens and the <end> step
        weights = out["weights"][i].numpy()[:steps, : len(source)]
        examples.append({"source": text, "translation": out["text"][i].numpy().decode("utf-8"),
                         "source_tokens": source, "target_tokens": target + ["<end>"] * (steps - len(target)),
                         "weights": [[round(float(w), 4) for w in row] for row in weights]})
    return examples


def _first_predictions(config: Config, column: str, limit: int) -> list[str]:
    import pyarrow.parquet as pq

    matches = FileSystems.match([join_path(layout.predictions_dir(config), "*.parquet")])[0].metadata_list
    texts: list[str] = []
    for metadata in sorted(matches, key=lambda m: m.path):
        with FileSystems.open(metadata.path) as f:
            texts.extend(pq.read_table(f, columns=[column]).column(column).to_pylist())
        if len(texts) >= limit:
            break
    return texts[:limit]


def clear_outputs(config: Config) -> None:
    """Deletes a previous evaluation's outputs (a rerun replaces them)."""
    delete_paths([layout.eval_dir(config)])


def run_config(config: Config, beam_args: Sequence[str] = (), save_main_session: bool = True) -> dict:
    """Evaluates the inference job's predictions; returns the metrics (also in ``metrics.json``)."""
    if not FileSystems.exists(layout.infer_summary_path(config)):
        raise FileNotFoundError(f"no finished inference run under {config.task_dir}: run `seqbeam infer` first "
                                f"({layout.infer_summary_path(config)} is missing)")
    started = time.monotonic()
    _LOG.info("evaluate %s: reference %s", config.task.name, reference_of(config).description)
    pipeline = beam.Pipeline(options=pipeline_options(beam_args, save_main_session))
    build_pipeline(pipeline, config)  # the graph runs every launch check: only then are old outputs deleted
    clear_outputs(config)
    pipeline.run().wait_until_finish()
    examples = attention_examples(config, plan_serving(config).model_path)
    if examples:
        write_json({"examples": len(examples), "items": examples}, layout.attention_path(config))
    metrics = read_json(layout.metrics_path(config))
    _LOG.info("evaluate %s done in %.1fs: %s", config.task.name, time.monotonic() - started,
              json.dumps(headline(metrics)))
    return metrics


def headline(metrics: dict) -> dict:
    """The few figures a person looks at first, from the test split when there is one."""
    splits = metrics.get("splits", {})
    split = "test" if "test" in splits else ALL
    figures = splits.get(split, {})
    keys = {"emoji": ("accuracy", "macro_f1"), "grammar": ("accuracy", "macro_f1"), "translation": ("bleu", "chrf"),
            "dates": ("exact_match", "valid_rate"), "names": ("novel", "unique")}[metrics["kind"]]
    out = {"split": split, "rows": figures.get("rows", 0), **{k: figures.get(k) for k in keys}}
    if metrics["kind"] == "dates":
        out.update({f"{g}_exact_match": figures.get(g, {}).get("exact_match") for g in ("clean", "noisy")})
    return out


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    """Splits seqbeam's own flags from the Beam pipeline flags, which pass through untouched."""
    return job_parser("seqbeam evaluate", __doc__, "evaluate.attention_examples=8").parse_known_args(argv)


def run(argv: Optional[Sequence[str]] = None, save_main_session: bool = True) -> dict:
    """Entry point of ``seqbeam evaluate``."""
    args, beam_args = parse_args(argv)
    metrics = run_config(load_config(args.config, args.overrides), beam_args, save_main_session=save_main_session)
    print(json.dumps(headline(metrics)))
    return metrics
