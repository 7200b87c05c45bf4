"""The batch-inference job: a corpus -> an exported SavedModel (RunInference) -> Parquet.

    read (the preprocessing readers) -> check rows, key them by id
      -> length-aware batches -> RunInference(KeyedModelHandler(SavedModelHandler))
         (emoji: batches of rows cut into sentences, column by column, each ONE model input
         and ONE result, from the row checks to the table: transforms/sentences.py)
      -> post-process and validate per task -> <task>/predictions/predictions-*.parquet
    every row not predicted, with its reason -> <task>/rejected/rejected-*.parquet

The names task reads no corpus: it samples ``infer.num_samples`` names.

The accounting is data, counted in the pipeline: per-batch count dicts (rows read, out,
low-confidence, truncated, flagged) summed with a bounded combine, rejected rows counted
by stage and code from the rejected records themselves, and the first failed rows kept.
The job's last step, run once both Parquet outputs are written, checks them and writes
``<task>/infer_summary.json``: it fails the job, writing no summary (its presence marks a
good run), when ``in != out + rejected`` or when more than ``infer.max_failure_rate`` of
the rows failed (``inference_error`` / ``processing_error``: a broken model, not bad
input), naming the first errors. No counter is read by the launcher, so a job launched
from a template, or whose bundles a runner retried, writes the same exact summary; the
``infer`` Beam counters stay, for the runner's UI (they count retried attempts too).
``seconds`` and ``rows_per_second`` are the launcher's wall time (graph built to job
done): the pipeline cannot know it, so they are in what :func:`run_config` returns, not
in the file. A rerun replaces the outputs of the previous run, once the new graph is
built (every launch check passed).

    seqbeam infer --config configs/emoji.yaml [--set infer.emoji_threshold=0.6 ...] [Beam flags]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import time
from typing import Iterable, Optional, Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from seqbeam.configs.schema import Config, load_config
from seqbeam.pipelines import layout
from seqbeam.pipelines.options import job_parser, pipeline_options
from seqbeam.pipelines.serving import ServingPlan, input_data, input_key, plan_serving
from seqbeam.storage import delete_paths, join_path, read_json, write_json
from seqbeam.transforms.inference import LengthBucketBatches, Prompt, SavedModelHandler
from seqbeam.transforms.postprocess import (
    STAGE_POSTPROCESS,
    PostprocessBatches,
    failed_inference_rejections,
    result_inputs,
    single_results,
)
from seqbeam.transforms.progress import LogProgress
from seqbeam.transforms.records import REJECTED, STAGE_READ, STATS
from seqbeam.transforms.retry import RetryRowByRow
from seqbeam.transforms.rows import ReadRows, TrainingNames
from seqbeam.transforms.sentences import SentenceBuckets
from seqbeam.transforms.sinks import (
    CountRejections,
    FirstErrors,
    SumCounts,
    WriteRejected,
    check_failure_rate,
    failure_report,
    rejections_by_stage,
)
from seqbeam.transforms.validate import KeyExamples

_LOG = logging.getLogger(__name__)
_NAMESPACE = "infer"


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
    """Keyed example batches -> RunInference -> dict of prediction ``tables``, ``rejected``
    records and the post-processing ``stats`` (count dicts)."""

    def __init__(self, config: Config, plan: ServingPlan):
        super().__init__()
        self._config = config
        self._plan = plan

    def expand(self, keyed_lists):
        infer = self._config.infer
        model = SavedModelHandler(
            self._plan.model_path, self._plan.signature, self._plan.output_format.outputs,
            beam_width=infer.beam_width, seed=infer.seed, day_first=self._plan.day_first,
            min_batch_size=infer.min_batch_size, max_batch_size=infer.max_batch_size)
        handler = KeyedModelHandler(model)
        sentences = self._config.output_kind == "emoji"
        if sentences:  # SentenceBatch elements hold their ids: one model call and one result per batch
            source = keyed_lists | "LengthBuckets" >> beam.ParDo(
                SentenceBuckets(infer.length_buckets, infer.max_batch_size))
            inference = RunInference(model.with_no_batching())
        elif self._config.output_kind == "names":  # already batched: one seed per batch
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
        if not sentences:
            results = results | "Rebatch" >> beam.BatchElements(min_batch_size=infer.max_batch_size,
                                                                max_batch_size=max(infer.max_batch_size, 1024))
        post = results | "Postprocess" >> beam.ParDo(
            RetryRowByRow(PostprocessBatches(self._plan.output_format), stage=STAGE_POSTPROCESS,
                          split=single_results, rows=result_inputs), known=known
        ).with_outputs(REJECTED, STATS, main="tables")
        rejected = (failed, post[REJECTED]) | "InferRejected" >> beam.Flatten()
        return {"tables": post.tables, "rejected": rejected, "stats": post[STATS]}


def build_pipeline(p: beam.Pipeline, config: Config, plan: ServingPlan) -> dict:
    """Adds the inference graph to ``p``; returns its prediction tables, rejected records and
    the summary step (a PCollection of the summary's path, once written)."""
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
        input_stats = keyed | "SampleStats" >> beam.Map(lambda prompts: {"read": len(prompts)})
        early_rejected = []
    else:
        corpus = dataclasses.replace(config, data=input_data(config))
        read = p | "Read" >> ReadRows(corpus, config_key=input_key(config))
        checked = read["batches"] | "KeyExamples" >> beam.ParDo(
            KeyExamples(infer.max_chars, sentences=config.output_kind == "emoji")
        ).with_outputs(REJECTED, STATS, main="keyed")
        # Counted where the rows go to the model: the progress lines show which workers call it.
        keyed = checked.keyed | "Progress" >> beam.ParDo(LogProgress("infer"))
        input_stats = checked[STATS]
        read_rejected = read["rejected"] | "CountReadRejections" >> beam.ParDo(CountRows("rows_in"))
        early_rejected = [read_rejected, checked[REJECTED]]
    annotated = keyed | "Annotate" >> Annotate(config, plan)
    tables = annotated["tables"]
    rejected = (*early_rejected, annotated["rejected"]) | "AllRejected" >> beam.Flatten()

    prediction_files = tables | "WritePredictions" >> beam.io.WriteToParquetBatched(
        join_path(layout.predictions_dir(config), "predictions"), schema=plan.output_format.schema, codec="snappy",
        file_name_suffix=".parquet", num_shards=infer.num_shards)
    rejected_files = (
        rejected
        | "CountRejected" >> beam.ParDo(CountRows("rejected_total"))
        | "WriteRejected" >> WriteRejected(layout.infer_rejected_dir(config), infer.num_shards)
    )
    counts = (input_stats, annotated["stats"]) | "AllStats" >> beam.Flatten() | "SumStats" >> beam.CombineGlobally(
        SumCounts())
    summary = (
        p
        | "Finish" >> beam.Create([None])
        # Every count and both written outputs are side inputs: the summary is written last.
        | "WriteSummary" >> beam.Map(
            write_summary, config, plan,
            counts=beam.pvalue.AsSingleton(counts),
            rejected_by_code=beam.pvalue.AsSingleton(rejected | "CountRejections" >> CountRejections()),
            first_errors=beam.pvalue.AsSingleton(rejected | "FirstErrors" >> FirstErrors()),
            # Iterated, not combined: a sink's file names carry the end-of-time timestamp, which
            # a combine on Beam's BundleBasedDirectRunner drops as late data.
            prediction_files=beam.pvalue.AsIter(prediction_files),
            rejected_files=beam.pvalue.AsIter(rejected_files),
        )
    )
    return {"tables": tables, "rejected": rejected, "summary": summary}


def build_summary(config: Config, plan: ServingPlan, counts: dict[str, int], rejected_by_code: dict[str, int],
                  first_errors: list[tuple], files: dict[str, int]) -> dict:
    """The job's summary from the counts summed in the pipeline.

    Raises RuntimeError when rows were lost (in != out + rejected) and TooManyFailures when
    more rows failed than ``infer.max_failure_rate`` allows, naming the first errors.
    """
    by_stage = rejections_by_stage(rejected_by_code)
    rows_in = counts.get("read", 0) + by_stage.get(STAGE_READ, 0)
    rows_out, rejected = counts.get("out", 0), sum(by_stage.values())
    if rows_in != rows_out + rejected:
        raise RuntimeError(f"row accounting failed: {rows_in} rows in, {rows_out} predicted, {rejected} rejected")
    failures = failure_report(rows_in, rejected_by_code, first_errors, config.infer.max_failure_rate)
    check_failure_rate(failures, rows_in, "infer.max_failure_rate", layout.infer_rejected_dir(config))
    return {
        "task": config.task.name,
        "config_hash": config.stage_hash("infer"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model_path": plan.model_path,
        "signature": plan.signature,
        "rows": {"in": rows_in, "out": rows_out, "rejected": rejected,
                 **{key: counts.get(key, 0) for key in ("low_confidence", "truncated", "flagged")}},
        "rejections": {"by_stage": by_stage, "by_reason": dict(sorted(rejected_by_code.items()))},
        "failures": failures,
        "files": files,
        "predictions": layout.predictions_dir(config),
        "rejected": layout.infer_rejected_dir(config),
    }


def write_summary(_, config: Config, plan: ServingPlan, *, counts, rejected_by_code, first_errors,
                  prediction_files: Iterable[str], rejected_files: Iterable[str]) -> str:
    """The job's last step: checks the accounting and writes ``infer_summary.json``; returns its path.

    ``prediction_files`` and ``rejected_files`` are the paths the two sinks wrote, streamed
    (only counted): as side inputs they make this step wait until both outputs are final.
    """
    files = {"predictions": sum(1 for _ in prediction_files), "rejected": sum(1 for _ in rejected_files)}
    summary = build_summary(config, plan, counts, rejected_by_code, first_errors, files)
    return write_json(summary, layout.infer_summary_path(config))


def clear_outputs(config: Config) -> None:
    """Deletes a previous run's predictions, rejected rows and summary (a rerun replaces them)."""
    delete_paths([layout.infer_summary_path(config), layout.predictions_dir(config), layout.infer_rejected_dir(config)])


def read_summary(config: Config) -> dict:
    """The summary the pipeline wrote (local or gs://, through Beam's filesystems, which wrote it)."""
    summary = read_json(layout.infer_summary_path(config))
    if summary is None:
        raise RuntimeError(f"the inference job ended without writing {layout.infer_summary_path(config)}")
    return summary


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
    """Runs inference for an already loaded config (used by ``seqbeam run`` and tests).

    Returns the summary the pipeline wrote, plus ``seconds`` and ``rows_per_second``: this
    launcher's wall time from before the graph is built to the end of the job.
    """
    plan = plan_serving(config)
    options = pipeline_options(beam_args, save_main_session)
    started = time.monotonic()
    _LOG.info("infer %s with %s (%s) -> %s", config.task.name, plan.model_path, plan.signature,
              layout.predictions_dir(config))
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, config, plan)  # every launch check runs here, before anything is deleted
    clear_outputs(config)
    pipeline.run().wait_until_finish()
    summary = read_summary(config)
    seconds = time.monotonic() - started
    summary = {**summary, "seconds": round(seconds, 2),
               "rows_per_second": round(summary["rows"]["in"] / seconds, 1) if seconds else None}
    rows = summary["rows"]
    _LOG.info("infer %s done in %.1fs: %d rows in, %d predicted, %d rejected, %d low-confidence, %d truncated, "
              "%d flagged (%.0f rows/s)", config.task.name, summary["seconds"], rows["in"], rows["out"],
              rows["rejected"], rows["low_confidence"], rows["truncated"], rows["flagged"],
              summary["rows_per_second"] or 0)
    return summary
