"""A task's rows, read from its corpus or generated, then validated: the input of every job.

Preprocessing, inference and evaluation read rows through :class:`ReadRows` (files by
byte range, or the task's generator) and :class:`ReadValidBatches` (the same rows checked
and given their split), so a row is read and judged the same way by every job.
"""

from __future__ import annotations

import apache_beam as beam

from seqbeam.configs.schema import Config
from seqbeam.transforms.postprocess import name_key
from seqbeam.transforms.readers import ReadCorpus
from seqbeam.transforms.records import REJECTED, STATS
from seqbeam.transforms.synthetic import GenerateRows
from seqbeam.transforms.validate import ValidateBatches


class ReadRows(beam.PTransform):
    """The task's rows, from files or its generator: dict of ``batches`` (lists of Rows) and ``rejected``.

    ``config_key`` is the config section ``config.data`` came from (``infer.input`` for
    the inference job's corpus): the reader's errors name the key the user set.
    """

    def __init__(self, config: Config, config_key: str = "data"):
        super().__init__()
        self._data = config.data
        self._batch_size = config.preprocess.batch_size
        generated = self._data.format == "generated"
        self._reader = None if generated else ReadCorpus(self._data, self._batch_size, config_key=config_key)

    def expand(self, pbegin):
        if self._reader is not None:
            return pbegin | "ReadCorpus" >> self._reader
        batches = pbegin | "Generate" >> GenerateRows(self._data.generator, self._batch_size)
        return {"batches": batches, "rejected": pbegin | "NoReadRejections" >> beam.Create([])}


class ReadValidBatches(beam.PTransform):
    """Rows read, batched and validated: ``batches`` (RowBatch), ``rejected`` and ``stats``.

    ``config_key``: as for :class:`ReadRows`.
    """

    def __init__(self, config: Config, config_key: str = "data"):
        super().__init__()
        self._config = config
        self._read = ReadRows(config, config_key)

    def expand(self, pbegin):
        read = pbegin | "Read" >> self._read
        validated = read["batches"] | "Validate" >> beam.ParDo(ValidateBatches(self._config)).with_outputs(
            REJECTED, STATS, main="batches"
        )
        rejected = (read["rejected"], validated[REJECTED]) | "Rejected" >> beam.Flatten()
        return {"batches": validated.batches, "rejected": rejected, "stats": validated[STATS]}


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
