"""The batch-inference job: a corpus -> an exported SavedModel (RunInference) -> Parquet.

    read (the preprocessing readers) -> check rows, key them by id
      -> length-aware batches -> RunInference(KeyedModelHandler(SavedModelHandler))
      -> post-process and validate per task -> <task>/predictions/predictions-*.parquet
    every row not predicted, with its reason -> <task>/rejected/rejected-*.parquet

The names task reads no corpus: it samples ``infer.num_samples`` names. The job ends with
a count of rows in / out / rejected / low-confidence and fails if ``in != out + rejected``;
the counts also go to ``<task>/infer_summary.json``, written last. A rerun replaces the
outputs of the previous run.

    seqbeam infer --config configs/emoji.yaml [--set infer.emoji_threshold=0.6 ...] [Beam flags]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from seqbeam.pipelines.cli import job_parser
from seqbeam.pipelines.config import Config, DataConfig, join_path, load_config
from seqbeam.pipelines.preprocess import ReadRows, ReadValidBatches
from seqbeam.pipelines.runners import pipeline_options
from seqbeam.transforms.inference import (
    LengthBucketBatches,
    Prompt,
    SavedModelHandler,
    read_model_card,
    resolve_model_path,
)
from seqbeam.transforms.postprocess import (
    REJECTED_SCHEMA,
    STAGE_POSTPROCESS,
    DateOutputs,
    EmojiOutputs,
    NameOutputs,
    OutputFormat,
    PostprocessBatches,
    ReberOutputs,
    TranslationOutputs,
    failed_inference_rejections,
    name_key,
    rejected_row,
    result_inputs,
    split_sentences,
)
from seqbeam.transforms.progress import LogProgress
from seqbeam.transforms.records import REJECTED, STAGE_VALIDATE, Row, rejection
from seqbeam.transforms.retry import RetryRowByRow, single_rows
from seqbeam.transforms.sinks import delete_paths, write_json

_LOG = logging.getLogger(__name__)
_NAMESPACE = "infer"


def predictions_dir(config: Config) -> str:
    """Folder of the prediction Parquet files."""
    return join_path(config.task_dir, "predictions")


def rejected_dir(config: Config) -> str:
    """Folder of the rejected-rows Parquet files of the inference job."""
    return join_path(config.task_dir, "rejected")


def summary_path(config: Config) -> str:
    """The job's counts, written last: its presence marks a finished run."""
    return join_path(config.task_dir, "infer_summary.json")


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


def plan_serving(config: Config) -> ServingPlan:
    """Resolves the model and checks it serves this task; fails at once naming the path."""
    model_path = resolve_model_path(config.infer.model_path, join_path(config.task_dir, "model"))
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
    return ServingPlan(model_path, signature, output_format)


class KeyExamples(beam.DoFn):
    """Lists of Rows -> lists of ``(id, example)`` the model can take; rejected: what it cannot.

    An example is the row's text, or (emoji tagging) the text cut into sentences. Empty
    texts and texts over ``infer.max_chars`` characters are rejected here, with the reason.
    """

    def __init__(self, max_chars: int, sentences: bool):
        self._max_chars = max_chars
        self._sentences = sentences
        self._rows_in = beam.metrics.Metrics.counter(_NAMESPACE, "rows_in")

    def process(self, rows: list[Row]):
        self._rows_in.inc(len(rows))
        keyed = []
        for row in rows:
            text = row.text
            if not text.strip():
                yield beam.pvalue.TaggedOutput(REJECTED, rejection(row.id, text, STAGE_VALIDATE, "empty_text"))
            elif len(text) > self._max_chars:
                yield beam.pvalue.TaggedOutput(REJECTED, rejection(
                    row.id, text, STAGE_VALIDATE, "too_long",
                    f"{len(text)} characters > infer.max_chars {self._max_chars}"))
            else:
                keyed.append((row.id, split_sentences(text) if self._sentences else text))
        if keyed:
            yield keyed


def sample_prompts(batch_index: int, batch_size: int, num_samples: int) -> list[tuple[str, Prompt]]:
    """The keyed empty prompts of one batch of name samples, seeded by the batch index."""
    start = batch_index * batch_size
    return [(f"sample-{i:08d}", Prompt("", batch_index)) for i in range(start, min(start + batch_size, num_samples))]


class CountRows(beam.DoFn):
    """Counts elements (or the rows of list elements) into an ``infer`` counter, passing them on."""

    def __init__(self, name: str):
        self._counter = beam.metrics.Metrics.counter(_NAMESPACE, name)

    def process(self, element):
        self._counter.inc(len(element) if isinstance(element, list) else 1)
        yield element


class Annotate(beam.PTransform):
    """Keyed example batches -> RunInference -> (prediction tables, rejected records)."""

    def __init__(self, config: Config, plan: ServingPlan):
        super().__init__()
        self._config = config
        self._plan = plan

    def expand(self, keyed_lists):
        infer = self._config.infer
        handler = KeyedModelHandler(SavedModelHandler(
            self._plan.model_path, self._plan.signature, self._plan.output_format.outputs,
            beam_width=infer.beam_width, seed=infer.seed,
            min_batch_size=infer.min_batch_size, max_batch_size=infer.max_batch_size))
        if self._config.output_kind == "names":  # already batched: one seed per batch
            source, inference = keyed_lists, RunInference(handler.with_no_batching())
        elif infer.length_buckets:
            source = keyed_lists | "LengthBuckets" >> beam.ParDo(
                LengthBucketBatches(infer.length_buckets, infer.max_batch_size))
            inference = RunInference(handler.with_no_batching())
        else:  # RunInference batches the keyed rows itself, in arrival order
            source = keyed_lists | "Unbatch" >> beam.FlatMap(lambda keyed: keyed)
            inference = RunInference(handler)
        results, failures = source | "RunInference" >> inference.with_exception_handling()
        failed = failures.failed_inferences | "FailedBatches" >> beam.FlatMap(failed_inference_rejections)
        known = None
        if self._config.output_kind == "names":
            known = beam.pvalue.AsSingleton(
                keyed_lists.pipeline | "TrainingNames" >> TrainingNames(self._config))
        post = (
            results
            | "Rebatch" >> beam.BatchElements(min_batch_size=infer.max_batch_size,
                                              max_batch_size=max(infer.max_batch_size, 1024))
            | "Postprocess" >> beam.ParDo(
                RetryRowByRow(PostprocessBatches(self._plan.output_format), stage=STAGE_POSTPROCESS,
                              split=single_rows, rows=result_inputs), known=known).with_outputs(REJECTED, main="tables")
        )
        return post.tables, (failed, post[REJECTED]) | "InferRejected" >> beam.Flatten()


class TrainingNames(beam.PTransform):
    """The names of the task's train split, as a singleton frozenset of :func:`name_key` keys."""

    def __init__(self, config: Config):
        super().__init__()
        self._config = config

    def expand(self, pbegin):
        return (
            (pbegin | "ReadTrainingNames" >> ReadValidBatches(self._config))["batches"]
            | "TrainKeys" >> beam.FlatMap(
                lambda batch: [name_key(t) for t, s in zip(batch.texts, batch.splits) if s == "train"])
            | "NameSet" >> beam.combiners.ToSet()
            | "Freeze" >> beam.Map(frozenset)
        )


def build_pipeline(p: beam.Pipeline, config: Config, plan: ServingPlan) -> dict:
    """Adds the inference graph to ``p``; returns its prediction tables and rejected records."""
    infer = config.infer
    if config.output_kind == "names":
        num_batches = -(-infer.num_samples // infer.max_batch_size)
        keyed = (
            p
            | "BatchIndices" >> beam.Create(range(num_batches))
            | "SpreadBatches" >> beam.Reshuffle()
            | "Prompts" >> beam.Map(sample_prompts, infer.max_batch_size, infer.num_samples)
            | "CountSamples" >> beam.ParDo(CountRows("rows_in"))
        )
        early_rejected = []
    else:
        read = p | "Read" >> ReadRows(dataclasses.replace(config, data=input_data(config)))
        checked = read["batches"] | "Progress" >> beam.ParDo(LogProgress("infer")) | "KeyExamples" >> beam.ParDo(
            KeyExamples(infer.max_chars, sentences=config.output_kind == "emoji")).with_outputs(REJECTED, main="keyed")
        keyed = checked.keyed
        read_rejected = read["rejected"] | "CountReadRejections" >> beam.ParDo(CountRows("rows_in"))
        early_rejected = [read_rejected, checked[REJECTED]]
    tables, infer_rejected = keyed | "Annotate" >> Annotate(config, plan)
    rejected = (*early_rejected, infer_rejected) | "AllRejected" >> beam.Flatten()

    tables | "WritePredictions" >> beam.io.WriteToParquetBatched(
        join_path(predictions_dir(config), "predictions"), schema=plan.output_format.schema, codec="snappy",
        file_name_suffix=".parquet", num_shards=infer.num_shards)
    (
        rejected
        | "CountRejected" >> beam.ParDo(CountRows("rejected_total"))
        | "RejectedRows" >> beam.Map(rejected_row)
        | "WriteRejected" >> beam.io.WriteToParquet(
            join_path(rejected_dir(config), "rejected"), schema=REJECTED_SCHEMA, codec="snappy",
            file_name_suffix=".parquet", num_shards=1)
    )
    return {"tables": tables, "rejected": rejected}


def clear_outputs(config: Config) -> None:
    """Deletes a previous run's predictions, rejected rows and summary (a rerun replaces them)."""
    delete_paths([summary_path(config), predictions_dir(config), rejected_dir(config)])


def counts_of(result) -> dict[str, int]:
    """The job's ``infer`` counters, summed over steps (committed values where the runner has them)."""
    counts: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(_NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + int(value or 0)
    return counts


def summarize(config: Config, plan: ServingPlan, counts: dict[str, int], seconds: float) -> dict:
    """The job's summary; raises RuntimeError when rows were lost (in != out + rejected)."""
    rows_in, rows_out, rejected = (counts.get(k, 0) for k in ("rows_in", "rows_out", "rejected_total"))
    if rows_in != rows_out + rejected:
        raise RuntimeError(f"row accounting failed: {rows_in} rows in, {rows_out} predicted, {rejected} rejected")
    return {
        "task": config.task.name,
        "config_hash": config.stage_hash("infer"),
        "model_path": plan.model_path,
        "signature": plan.signature,
        "rows": {"in": rows_in, "out": rows_out, "rejected": rejected,
                 "low_confidence": counts.get("low_confidence", 0), "truncated": counts.get("truncated", 0),
                 "flagged": counts.get("flagged", 0)},
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows_in / seconds, 1) if seconds else None,
        "predictions": predictions_dir(config),
        "rejected": rejected_dir(config),
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    """Splits seqbeam's own flags from the Beam pipeline flags, which pass through untouched."""
    parser = job_parser("seqbeam infer", __doc__, "infer.num_samples=10000")
    return parser.parse_known_args(argv)


def run(argv: Optional[Sequence[str]] = None, save_main_session: bool = True) -> dict:
    """Runs the inference job and returns its summary."""
    args, beam_args = parse_args(argv)
    config = load_config(args.config, args.overrides)
    summary = run_config(config, beam_args, save_main_session=save_main_session)
    print(json.dumps(summary["rows"]))
    return summary


def run_config(config: Config, beam_args: Sequence[str] = (), save_main_session: bool = True) -> dict:
    """Runs inference for an already loaded config (used by ``seqbeam run`` and tests)."""
    plan = plan_serving(config)
    options = pipeline_options(beam_args, save_main_session)
    started = time.monotonic()
    _LOG.info("infer %s with %s (%s) -> %s", config.task.name, plan.model_path, plan.signature,
              predictions_dir(config))
    clear_outputs(config)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, config, plan)
    result = pipeline.run()
    result.wait_until_finish()
    summary = summarize(config, plan, counts_of(result), time.monotonic() - started)
    write_json(summary, summary_path(config))
    rows = summary["rows"]
    _LOG.info("infer %s done in %.1fs: %d rows in, %d predicted, %d rejected, %d low-confidence, %d truncated, "
              "%d flagged (%.0f rows/s)", config.task.name, summary["seconds"], rows["in"], rows["out"],
              rows["rejected"], rows["low_confidence"], rows["truncated"], rows["flagged"],
              summary["rows_per_second"] or 0)
    return summary
