"""Beam source for the generated corpora (dates, Reber strings).

The corpus is cut into shards generated in parallel; shard ``i`` is seeded from the
config seed and ``i``, so the same config gives the same rows on every runner.
"""

from __future__ import annotations

import hashlib
from typing import Iterator

import apache_beam as beam

from seqbeam.pipelines.config import GeneratorConfig
from seqbeam.transforms.date_generator import generate_dates
from seqbeam.transforms.records import Row, in_batches
from seqbeam.transforms.reber_generator import generate_reber


def shard_seed(seed: int, shard: int) -> int:
    """A well-mixed 63-bit seed for one shard of a generated corpus."""
    digest = hashlib.sha256(f"{seed}:{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def generate_shard(config: GeneratorConfig, shard: int) -> Iterator[Row]:
    """Rows of one shard; ids are ``<generator>-<seed>:<global row index>``."""
    start = shard * config.rows_per_shard
    count = min(config.rows_per_shard, config.num_rows - start)
    seed = shard_seed(config.seed, shard)
    prefix = f"{config.name}-{config.seed}"
    if config.name == "dates":
        examples = generate_dates(count, seed, day_first=config.day_first, noise_rate=config.noise_rate)
        for i, example in enumerate(examples, start=start):
            yield Row(id=f"{prefix}:{i}", text=example.raw, target=example.iso)
    else:
        for i, example in enumerate(generate_reber(count, seed), start=start):
            yield Row(id=f"{prefix}:{i}", text=example.text, label=example.label)


class GenerateRows(beam.PTransform):
    """A generated corpus as a PCollection of lists of Rows, shards spread over the workers."""

    def __init__(self, config: GeneratorConfig, batch_size: int = 1024):
        super().__init__()
        self._config = config
        self._batch_size = batch_size

    def expand(self, pbegin):
        num_shards = -(-self._config.num_rows // self._config.rows_per_shard)
        return (
            pbegin
            | "ShardIndices" >> beam.Create(range(num_shards))
            | "SpreadShards" >> beam.Reshuffle()
            | "Generate"
            >> beam.FlatMap(lambda shard, config, size: in_batches(generate_shard(config, shard), size),
                            self._config, self._batch_size)
        )
