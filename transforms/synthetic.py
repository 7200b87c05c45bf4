"""Beam source for the generated corpora (dates, Reber strings).

The corpus is cut into shards generated in parallel; shard ``i`` is seeded from the
config seed and ``i``, so the same config gives the same rows on every runner.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator, Optional

import apache_beam as beam

from seqbeam.configs.schema import GeneratorConfig
from seqbeam.text.day_order import day_order_prefix
from seqbeam.transforms.date_generator import generate_dates
from seqbeam.transforms.records import Row, in_batches
from seqbeam.transforms.reber_generator import generate_reber


def shard_seed(seed: int, shard: int) -> int:
    """A well-mixed 63-bit seed for one shard of a generated corpus."""
    digest = hashlib.sha256(f"{seed}:{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def num_shards(config: GeneratorConfig) -> int:
    """How many shards the generated corpus is cut into."""
    return -(-config.num_rows // config.rows_per_shard)


def generate_examples(config: GeneratorConfig, shard: int) -> Iterator[tuple[str, Any]]:
    """``(id, example)`` of one shard: DateExamples or ReberExamples, ids ``<generator>-<seed>:<row index>``.

    The examples keep what the rows drop (a date's format, whether it is noisy), which the
    evaluation reports accuracy by.
    """
    start = shard * config.rows_per_shard
    count = min(config.rows_per_shard, config.num_rows - start)
    seed = shard_seed(config.seed, shard)
    prefix = f"{config.name}-{config.seed}"
    if config.name == "dates":
        examples = generate_dates(count, seed, day_first=generator_day_first(config), noise_rate=config.noise_rate,
                                  real_world_rate=config.real_world_rate)
    else:
        examples = generate_reber(count, seed)
    for i, example in enumerate(examples, start=start):
        yield f"{prefix}:{i}", example


def generator_day_first(config: GeneratorConfig) -> Optional[bool]:
    """The generator's ``day_first`` argument for a config: its order, or None ("both": each row its own)."""
    return None if config.day_first == "both" else config.day_first


def generate_shard(config: GeneratorConfig, shard: int) -> Iterator[Row]:
    """Rows of one shard of a generated corpus.

    A date row's text starts with the day-order token of its order (``text/day_order.py``):
    the model is trained on it, and a served text that carries one keeps it.
    """
    for row_id, example in generate_examples(config, shard):
        if config.name == "dates":
            yield Row(id=row_id, text=day_order_prefix(example.day_first) + example.raw, target=example.iso)
        else:
            yield Row(id=row_id, text=example.text, label=example.label)


class GenerateRows(beam.PTransform):
    """A generated corpus as a PCollection of lists of Rows, shards spread over the workers."""

    def __init__(self, config: GeneratorConfig, batch_size: int = 1024):
        super().__init__()
        self._config = config
        self._batch_size = batch_size

    def expand(self, pbegin):
        return (
            pbegin
            | "ShardIndices" >> beam.Create(range(num_shards(self._config)))
            | "SpreadShards" >> beam.Reshuffle()
            | "Generate"
            >> beam.FlatMap(lambda shard, config, size: in_batches(generate_shard(config, shard), size),
                            self._config, self._batch_size)
        )
