"""The preprocessing job: corpus -> tokenized, padded, sharded TFRecords + vocabularies.

    pass 1: read (in batches) -> validate/split -> token counts of the train rows -> top-K vocabulary
    pass 2: read (in batches) -> validate/split -> ids (the vocabulary file's path as side input) -> <start>/<end>
            -> pad -> tf.train.Example -> <task>/data/{train,valid,test}-*.tfrecord.gz

Outputs, under ``<output_dir>/<task>/data/``: the shards, ``vocab/*.txt``,
``rejected/rejected-*.parquet`` (id, raw, stage, code, reason of every row not written; sharded
like the TFRecords, ``preprocess.num_shards``), ``config.yaml`` (the resolved config) and
``metadata.json`` (written last, once every shard is flushed: its presence marks a
complete run). The step that writes it checks the row accounting, counted in the
pipeline, and fails the job, writing no metadata.json, when rows were lost or when more
than ``preprocess.max_failure_rate`` of the rows failed (``processing_error``), naming the
first errors. Old outputs are deleted only once the graph is built, which runs every
launch check: a typo in ``data.path`` leaves the last good run in place.

    seqbeam preprocess --config configs/emoji.yaml [--set key=value ...] [Beam flags]
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Optional, Sequence

import apache_beam as beam

from seqbeam.configs.schema import Config, load_config
from seqbeam.pipelines import layout
from seqbeam.pipelines.options import job_parser, pipeline_options
from seqbeam.storage import delete_paths, read_json, write_json, write_text
from seqbeam.transforms.encode import EncodeBatches
from seqbeam.transforms.progress import LogProgress
from seqbeam.transforms.records import REJECTED, STAGE_ENCODE, STATS, RowBatch
from seqbeam.transforms.retry import RetryRowByRow
from seqbeam.transforms.rows import ReadValidBatches
from seqbeam.transforms.sinks import (
    CountRejections,
    FirstErrors,
    SumCounts,
    WriteRejected,
    WriteSplits,
    build_metadata,
    vocabulary_facts,
    write_vocabulary,
)
from seqbeam.transforms.vocabulary import BuildVocabulary

_LOG = logging.getLogger(__name__)


class BuildVocabularies(beam.PTransform):
    """The task's vocabularies (dict name -> singleton PCollection) from its train rows.

    This pass reads the corpus on its own: the encoding pass reads it again rather than
    keeping every row until the vocabulary is known, so memory stays flat in the corpus
    size on every runner (reading is far cheaper than holding or shuffling the corpus).
    """

    def __init__(self, config: Config):
        super().__init__()
        self._config = config

    def expand(self, pbegin):
        pre = self._config.preprocess
        batches = (
            (pbegin | "ReadForVocabulary" >> ReadValidBatches(self._config))["batches"]
            | "VocabularyProgress" >> beam.ParDo(LogProgress("vocabulary"))
        )
        columns = {"source": "texts", "target": "targets", "tokens": "texts"}
        return {
            name: batches
            | f"Count{name.capitalize()}"
            >> BuildVocabulary(pre.tokenizer, pre.target_vocab if name == "target" else pre.source_vocab,
                               column=columns[name],
                               config_key="preprocess.target_vocab" if name == "target" else "preprocess.source_vocab")
            for name in layout.vocabulary_names(self._config)
        }


def single_row_batches(batch: RowBatch) -> list[RowBatch]:
    """One-row RowBatches of a batch (a failing batch is retried row by row)."""
    return [RowBatch.from_rows([batch.row(i)]) for i in range(len(batch))]


def batch_inputs(batch: RowBatch) -> list[tuple[str, str]]:
    """``(id, raw input)`` of the rows of a batch, for rejected records."""
    return [(row_id, batch.row(i).raw()) for i, row_id in enumerate(batch.ids)]


def build_pipeline(p: beam.Pipeline, config: Config) -> dict:
    """Adds the preprocessing graph to ``p``; returns its main PCollections (for tests)."""
    pre = config.preprocess
    out_dir = layout.data_dir(config)

    vocabularies = p | "Vocabularies" >> BuildVocabularies(config)
    # The encoding reads each vocabulary from its written file: the side input is a path, not
    # the tokens (which a vocabulary of pretrained vectors' words holds by the hundred thousand).
    vocab_files = [
        vocab | f"Write{name.capitalize()}Vocabulary" >> beam.Map(write_vocabulary, layout.vocabulary_path(config, name))
        for name, vocab in vocabularies.items()
    ]
    read = p | "ReadRows" >> ReadValidBatches(config)
    batches = read["batches"] | "Progress" >> beam.ParDo(LogProgress("preprocess"))
    encoded = batches | "Encode" >> beam.ParDo(
        RetryRowByRow(EncodeBatches(config), stage=STAGE_ENCODE, split=single_row_batches, rows=batch_inputs),
        *[beam.pvalue.AsSingleton(path) for path in vocab_files]
    ).with_outputs(REJECTED, STATS, main="examples")
    shards = encoded.examples | "WriteTFRecords" >> WriteSplits(out_dir, pre.num_shards)

    rejected = (read["rejected"], encoded[REJECTED]) | "AllRejected" >> beam.Flatten()
    rejected_files = rejected | "WriteRejected" >> WriteRejected(layout.preprocess_rejected_dir(config), pre.num_shards)
    stats = (read["stats"], encoded[STATS]) | "AllStats" >> beam.Flatten() | "SumStats" >> beam.CombineGlobally(
        SumCounts()
    )
    rejected_by_code = rejected | "CountRejections" >> CountRejections()
    first_errors = rejected | "FirstErrors" >> FirstErrors()
    shard_paths = [
        paths | f"Tag{split.capitalize()}Shards" >> beam.Map(lambda path, s=split: (s, path))
        for split, paths in shards.items()
    ] | "AllShards" >> beam.Flatten()

    def write_metadata(_, stats, rejected_by_code, first_errors, shard_paths, done, **vocabs):
        shards_by_split = {split: [path for s, path in shard_paths if s == split] for split in shards}
        # Raises, leaving no metadata.json, when rows were lost or too many failed.
        payload = build_metadata(config, stats, rejected_by_code, vocabs, shards_by_split,
                                 first_errors=first_errors, rejected_dir=layout.preprocess_rejected_dir(config))
        write_text(config.to_yaml(), layout.resolved_config_path(config))
        return write_json(payload, layout.metadata_path(config))

    # Every other output is a side input: metadata.json is written last, as the completion marker.
    metadata_path = (
        p
        | "Finish" >> beam.Create([None])
        | "WriteMetadata"
        >> beam.Map(
            write_metadata,
            stats=beam.pvalue.AsSingleton(stats),
            rejected_by_code=beam.pvalue.AsSingleton(rejected_by_code),
            first_errors=beam.pvalue.AsSingleton(first_errors),
            shard_paths=beam.pvalue.AsList(shard_paths),
            done=beam.pvalue.AsList([rejected_files, *vocab_files] | "AllWritten" >> beam.Flatten()),
            **{name: beam.pvalue.AsSingleton(v | f"{name.capitalize()}VocabularyFacts" >> beam.Map(vocabulary_facts))
               for name, v in vocabularies.items()},
        )
    )
    return {"batches": read["batches"], "rejected": rejected, "vocabularies": vocabularies,
            "examples": encoded.examples, "metadata": metadata_path}


def clear_outputs(config: Config) -> None:
    """Deletes a previous run's outputs so a rerun leaves exactly one set of shards.

    Called once the graph is built: building it runs every launch check (paths, columns),
    so a job that cannot start leaves the last good outputs in place.
    """
    delete_paths([layout.data_dir(config)])


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    """Splits seqbeam's own flags from the Beam pipeline flags, which pass through untouched."""
    parser = job_parser("seqbeam preprocess", __doc__, "preprocess.num_shards=8")
    return parser.parse_known_args(argv)


def run(argv: Optional[Sequence[str]] = None, save_main_session: bool = True,
        test_pipeline: Optional[beam.Pipeline] = None) -> dict:
    """Runs the preprocessing job and returns the metadata it wrote."""
    args, beam_args = parse_args(argv)
    config = load_config(args.config, args.overrides)
    return run_config(config, beam_args, save_main_session=save_main_session, test_pipeline=test_pipeline)


def run_config(config: Config, beam_args: Sequence[str] = (), save_main_session: bool = True,
               test_pipeline: Optional[beam.Pipeline] = None) -> dict:
    """Runs preprocessing for an already loaded config (used by ``seqbeam run`` and tests)."""
    options = pipeline_options(beam_args, save_main_session)
    started = time.monotonic()
    _LOG.info("preprocess %s (config %s) -> %s", config.task.name, config.hash, layout.data_dir(config))
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build_pipeline(pipeline, config)  # every launch check runs here, before anything is deleted
    clear_outputs(config)
    pipeline.run().wait_until_finish()
    metadata = read_json(layout.metadata_path(config))
    if metadata is None:
        raise RuntimeError(f"the preprocessing job ended without writing {layout.metadata_path(config)}")
    rows = metadata["rows"]
    _LOG.info(
        "preprocess %s done in %.1fs: %d rows in, %d train / %d valid / %d test, %d rejected, %d truncated",
        config.task.name, time.monotonic() - started, rows["in"], rows["train"], rows["valid"], rows["test"],
        rows["rejected"], metadata["truncated"],
    )
    if rows["train"] == 0:
        raise RuntimeError(
            f"no row reached the train split ({rows['rejected']} rejected): see {layout.preprocess_rejected_dir(config)}/"
        )
    return metadata
