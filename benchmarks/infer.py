#!/usr/bin/env python
"""Benchmark of the batch-inference job: throughput per task, and the date normalizer vs date libraries.

Everything is measured with the real jobs in this one process, on Beam's local runner
(``FnApiRunner``, in-process): models are preprocessed,
trained and exported by ``seqbeam.pipelines.preprocess.run_config`` and
``seqbeam.pipelines.train.run_config`` on configs loaded from ``configs/*.yaml`` with
``--set``-style overrides (``output_dir`` in the work dir, epochs, paths), then served by
``seqbeam.pipelines.infer.run_config`` on corpora written here as text files (one row per
line, ``infer.input={format: text, path: ...}``; row ids ``<file>:<byte offset of the line>``).

Models (trained once, shared by both sections):

* ``emoji V1`` / ``emoji V2``: ``configs/emoji.yaml`` with ``train.model.family``
  ``emojifier_v1`` / ``emojifier_v2``, trained ``--emoji-epochs`` epochs (early stopping
  off) on the shipped ``data/emoji_sentences.csv``. Speed is what counts here.
* ``dates``: ``configs/dates.yaml`` with ``--dates-rows`` generated rows and
  ``--dates-epochs`` epochs (the recipe of ``benchmarks/train.py`` section ``dates``).
* ``translate``: ``configs/translate.yaml`` on a synthetic parallel corpus made here
  (``--translate-pairs`` pairs): a source and a target lexicon of ``--translate-lexicon``
  pronounceable words each, Zipf-distributed words, 3-20 words per sentence plus a final
  ".", target = a fixed word-by-word mapping with a local reordering (a word whose
  source rank is a multiple of 4, at an even position, swaps with the next one, as
  adjective/noun order does). Vocabularies capped at 8,000 (``preprocess.*_vocab.max_size``),
  ``train.model.units=256``, ``--translate-epochs`` epochs. The shipped 350 pairs have a
  vocabulary too small for the 8k-vocabulary / 256-unit figure the targets are stated for.
* ``reber``: ``configs/reber.yaml``, ``--reber-epochs`` epochs.

1. ``throughput``: rows/s of the inference job per task and corpus size (``--sizes``),
   each size twice on the same input file: WITH length-aware batching (the config's
   ``infer.length_buckets``, the default) and WITHOUT (``infer.length_buckets=[]``:
   RunInference batches rows itself in arrival order). Per run: ``job rows/s`` (the job
   summary's ``rows_per_second``: rows in / seconds from before the pipeline is built to
   the end of the run), ``wall rows/s`` (rows / wall time around ``run_config``, the
   model-card read included), the ``in / out / rejected`` counts, sentences/s for emoji
   (sentences in the ``sentences`` column of the output / job seconds), peak RSS (the
   largest sum, sampled every 0.2 s, of the RSS of this process and its children),
   ``cores used / other`` (CPU seconds of this process and its children / of every other
   process on the machine during the run, over its wall time: a check that nothing else
   competed for the cores), and ``same as bucketed``: the share of rows whose output (emoji: every sentence's label;
   dates: the model output; translation: the text; reber: the decision) is identical in
   the run without buckets (join on id). Corpora:
   - emoji: each line 1-3 sentences drawn from the shipped sentences (a "." added to a
     sentence without final punctuation, so the job cuts the line back into them);
   - dates: ``generate_dates`` with seed ``--seed`` + 1 (training used the config seed),
     noise rate as in ``configs/dates.yaml``; exact match against the truth is reported
     too;
   - translate: new source sentences of the synthetic language (another seed), decoded
     greedily (``infer.decode=greedy``) and by beam search (``infer.decode=beam``,
     ``infer.beam_width=4``); the mean output length in tokens (words and punctuation
     marks of the detokenized text) is printed beside the reference translations'
     length, and the share of outputs cut at the model's target length (no ``<end>``).
     Beam search is slow: sizes above ``--beam-max-rows`` (greedy: ``--translate-max-rows``)
     are skipped and the cap itself is measured instead; the skipped sizes are printed;
   - reber: ``generate_reber`` strings (another seed than training).
   Targets (2 CPU cores): dates >= 5,000 rows/s; emoji V1 >= 50,000 sentences/s, V2 >=
   5,000 sentences/s; translation greedy >= 500 sentences/s, beam 4 >= 150 sentences/s;
   checked on the job rows/s (sentences/s for emoji) of every run.
2. ``dates``: on the same inputs, in the same run, seqbeam vs ``python-dateutil`` and
   ``dateparser``: ``--dates-compare-rows`` clean dates (noise rate 0) and as many noisy
   ones (noise rate 1), seeds ``--seed`` + 2 and + 3, in one text file served by one
   inference job (default length buckets). seqbeam is exact when ``iso_date`` equals the
   truth (join on id); a library when ``result.date().isoformat()`` equals it (an
   exception or None is wrong). Libraries run single-process, on one core, one call per
   date, after one untimed warm-up call; every setting listed in ``LIBRARY_SETTINGS`` is
   measured and the best one on clean inputs (ties: on noisy inputs) is the one the
   targets are checked against. The seqbeam rows/s is the job's (model load and Beam
   start-up included, so small inputs understate it; section 1 has the large-N figure).
   Targets: seqbeam >= 99.9 % exact on clean inputs, >= 20 points above dateutil on
   noisy inputs, >= 5,000 dates/s.

    python benchmarks/infer.py --quick                 # tiny sizes and epochs: a few minutes, checks it all runs
    python benchmarks/infer.py --json /tmp/infer.json  # the full run (about an hour on 2 cores)
    python benchmarks/infer.py --sections dates --dates-compare-rows 2000
    python benchmarks/infer.py --tasks dates "emoji V1" --sizes 10000 100000 --keep --work-dir /tmp/ib
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime
import json
import logging
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Optional, Sequence

from reporting import TreeRssSampler, mark as _mark, md_table as _md_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
EMOJI_CSV = os.path.join(ROOT, "data", "emoji_sentences.csv")

SECTIONS = ("throughput", "dates")

# Throughput runs: label -> (model key, extra infer overrides, unit counted by the target).
RUNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "emoji V1": ("emoji_v1", ()),
    "emoji V2": ("emoji_v2", ()),
    "dates": ("dates", ()),
    "translate greedy": ("translate", ("infer.decode=greedy",)),
    "translate beam 4": ("translate", ("infer.decode=beam", "infer.beam_width=4")),
    "reber": ("reber", ()),
}
# Targets on 2 CPU cores: label -> (unit, minimum per second).
TARGETS = {
    "dates": ("rows", 5_000.0),
    "emoji V1": ("sentences", 50_000.0),
    "emoji V2": ("sentences", 5_000.0),
    "translate greedy": ("sentences", 500.0),
    "translate beam 4": ("sentences", 150.0),
}
TARGET_DATES_CLEAN = 0.999
TARGET_NOISY_MARGIN = 0.20  # seqbeam's noisy exact match minus dateutil's
TARGET_DATES_PER_S = 5_000.0

# Defaults: full run / --quick.
DEFAULTS = {
    "sizes": ([10_000, 100_000, 1_000_000], [300, 1_000]),
    "translate_max_rows": (100_000, 1_000),
    "beam_max_rows": (20_000, 1_000),
    "dates_compare_rows": (10_000, 200),
    "emoji_epochs": (20, 2),
    "dates_rows": (50_000, 2_000),
    "dates_epochs": (10, 1),
    "translate_pairs": (30_000, 600),
    "translate_epochs": (2, 1),
    "translate_lexicon": (10_000, 2_000),
    "translate_batch": (64, 64),
    "reber_epochs": (5, 1),
    "reber_rows": (None, 2_000),  # None: the config's num_rows
}

# Synthetic translation corpus.
ZIPF_EXPONENT = 1.0
SENTENCE_WORDS = (3, 20)
VOCAB_MAX = 8_000
TRANSLATE_UNITS = 256
SOURCE_SYLLABLES = (["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
                     "br", "ch", "sh", "st", "th", "tr"],
                    ["a", "e", "i", "o", "u", "ea", "ou"], ["", "", "n", "r", "s", "t", "ng"])
TARGET_SYLLABLES = (["", "b", "c", "d", "f", "g", "j", "l", "m", "n", "ñ", "p", "qu", "r", "s", "t", "v", "z",
                     "bl", "gr", "pr", "ll"],
                    ["a", "e", "i", "o", "u", "ie", "ue", "á", "é"], ["", "", "n", "r", "s", "l", "z"])

MIB = 1024 * 1024

# Date libraries: label -> (library, settings shown, parse function factory).
DATEPARSER_BASE = {"DATE_ORDER": "MDY", "PREFER_DAY_OF_MONTH": "first", "RETURN_AS_TIMEZONE_AWARE": False}


def _library_settings() -> dict[str, tuple[str, str, Callable[[str], Any]]]:
    import dateparser
    from dateutil import parser as dateutil_parser

    default = datetime.datetime(2000, 1, 1)
    english_absolute = {**DATEPARSER_BASE, "PARSERS": ["absolute-time"]}
    return {
        "dateutil": ("python-dateutil", "parse(s, dayfirst=False)",
                     lambda s: dateutil_parser.parse(s, dayfirst=False)),
        "dateutil fuzzy": ("python-dateutil", "parse(s, dayfirst=False, fuzzy=True, default=2000-01-01)",
                           lambda s: dateutil_parser.parse(s, dayfirst=False, fuzzy=True, default=default)),
        "dateparser": ("dateparser", f"parse(s, settings={DATEPARSER_BASE})",
                       lambda s: dateparser.parse(s, settings=DATEPARSER_BASE)),
        "dateparser en": ("dateparser", f"parse(s, languages=['en'], settings={english_absolute})",
                          lambda s: dateparser.parse(s, languages=["en"], settings=english_absolute)),
    }


# --------------------------------------------------------------------------- helpers


def _q(value: Any) -> str:
    """A value for a ``key=value`` override (JSON is YAML: paths stay strings, whatever they hold)."""
    return json.dumps(value) if isinstance(value, (str, dict, list)) else str(value)


def load_task(config_file: str, overrides: Sequence[str]):
    """configs/<file> with the overrides; relative data / infer.input paths are resolved against the repository."""
    from seqbeam.pipelines.config import load_config

    path = os.path.join(CONFIGS, config_file)
    config = load_config(path, list(overrides))
    extra = []
    if config.data.path and "://" not in config.data.path and not os.path.isabs(config.data.path):
        extra.append(f"data.path={_q(os.path.join(ROOT, config.data.path))}")
    data = config.infer.input
    if data is not None and data.path and "://" not in data.path and not os.path.isabs(data.path):
        extra.append(f"infer.input.path={_q(os.path.join(ROOT, data.path))}")
    return load_config(path, [*list(overrides), *extra]) if extra else config


class OtherLoad:
    """CPU time spent by other processes on this machine meanwhile, in cores (a contention check).

    System-wide busy time (all states but idle and iowait) minus this process's and its
    children's CPU time, over the wall time of the block; ``steal`` is the hypervisor's.
    """

    def __enter__(self) -> "OtherLoad":
        import psutil

        self._psutil = psutil
        self._started = time.perf_counter()
        self._system = psutil.cpu_times()
        self._own = self._own_seconds()
        return self

    def _own_seconds(self) -> float:
        times = self._psutil.Process(os.getpid()).cpu_times()
        return times.user + times.system + times.children_user + times.children_system

    @staticmethod
    def _busy(times) -> float:
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def __exit__(self, *exc) -> None:
        system = self._psutil.cpu_times()
        wall = max(time.perf_counter() - self._started, 1e-9)
        own = self._own_seconds() - self._own
        self.own_cores = own / wall
        self.other_cores = max(0.0, (self._busy(system) - self._busy(self._system) - own) / wall)
        self.steal_cores = (getattr(system, "steal", 0.0) - getattr(self._system, "steal", 0.0)) / wall


def _forget_models() -> None:
    """Frees the Keras/TF state of the previous training (one process runs them all)."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def _pct(x: Optional[float], digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f} %"


def _num(x: Optional[float], digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def line_numbers(path: str) -> dict[int, int]:
    """Byte offset of each line of a text file -> its 1-based line number (row ids are ``<file>:<offset>``)."""
    numbers, offset = {}, 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            numbers[offset] = number
            offset += len(line)
    return numbers


def line_number(row_id: str, numbers: dict[int, int]) -> int:
    """The 1-based line of a text-file row id ``<file>:<offset>``, from :func:`line_numbers`."""
    return numbers[int(row_id.rsplit(":", 1)[1])]


# --------------------------------------------------------------------------- corpora


def synthetic_words(rng, size: int, syllables) -> list[str]:
    """``size`` distinct pronounceable words built from (onsets, vowels, codas), shortest first."""
    onsets, vowels, codas = syllables
    words: set[str] = set()
    while len(words) < size:
        parts = [onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
                 + codas[rng.integers(len(codas))] for _ in range(int(rng.integers(1, 5)))]
        word = "".join(parts)
        if len(word) >= 2:
            words.add(word)
    return sorted(words, key=lambda w: (len(w), w))


class SyntheticLanguage:
    """A source and a target lexicon, a word-by-word mapping with local reordering, Zipf sampling."""

    def __init__(self, lexicon: int, seed: int):
        import numpy as np

        rng = np.random.default_rng(seed)
        self.source = synthetic_words(rng, lexicon, SOURCE_SYLLABLES)
        self.target = synthetic_words(rng, lexicon, TARGET_SYLLABLES)
        self.mapping = rng.permutation(lexicon)
        weights = 1.0 / np.arange(1, lexicon + 1) ** ZIPF_EXPONENT
        self.cumulative = np.cumsum(weights / weights.sum())
        self.cumulative[-1] = 1.0

    def pairs(self, n: int, seed: int):
        """``n`` (source, target) sentences, deterministic from ``seed``."""
        import numpy as np

        rng = np.random.default_rng(seed)
        lo, hi = SENTENCE_WORDS
        lengths = rng.integers(lo, hi + 1, size=n)
        ranks = np.searchsorted(self.cumulative, rng.random(int(lengths.sum())), side="right").tolist()
        position = 0
        for length in lengths.tolist():
            words = ranks[position:position + length]
            position += length
            target = [self.target[self.mapping[r]] for r in words]
            for j in range(0, length - 1, 2):  # local reordering: "adjective noun" -> "noun adjective"
                if words[j] % 4 == 0:
                    target[j], target[j + 1] = target[j + 1], target[j]
            yield " ".join(self.source[r] for r in words) + " .", " ".join(target) + " ."


def write_lines(path: str, lines) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
            count += 1
    return count


def emoji_sentences() -> list[str]:
    with open(EMOJI_CSV, encoding="utf-8-sig", newline="") as f:
        sentences = [row["sentence"].strip() for row in csv.DictReader(f) if row["sentence"].strip()]
    return [s if s[-1] in ".!?…" else s + "." for s in sentences]


def emoji_lines(n: int, seed: int):
    """``n`` lines of 1-3 shipped sentences each; yields (line, number of sentences)."""
    sentences = emoji_sentences()
    rng = random.Random(seed)
    for _ in range(n):
        k = rng.randint(1, 3)
        yield " ".join(rng.sample(sentences, k)), k


class Corpus:
    """An input text file of one task and size, with what the benchmark knows of each line."""

    def __init__(self, path: str, rows: int, truth: Optional[list] = None, sentences: int = 0,
                 reference_tokens: Optional[float] = None, seconds: float = 0.0):
        self.path = path
        self.rows = rows
        self.truth = truth  # dates: (iso, noisy) per line
        self.sentences = sentences
        self.reference_tokens = reference_tokens
        self.seconds = seconds


def make_corpus(model_key: str, n: int, args, workdir: str, language: Optional[SyntheticLanguage]) -> Corpus:
    """Writes the input file of ``n`` rows for a task (the same seed for every size: prefixes)."""
    directory = os.path.join(workdir, "inputs")
    os.makedirs(directory, exist_ok=True)
    started = time.perf_counter()
    if model_key.startswith("emoji"):
        path = os.path.join(directory, f"emoji-{n}.txt")
        counts = []

        def lines():
            for line, k in emoji_lines(n, args.seed + 1):
                counts.append(k)
                yield line

        write_lines(path, lines())
        corpus = Corpus(path, n, sentences=sum(counts))
    elif model_key == "dates":
        from seqbeam.transforms.date_generator import generate_dates

        config = load_task("dates.yaml", [])
        path = os.path.join(directory, f"dates-{n}.txt")
        truth = []

        def lines():
            for example in generate_dates(n, args.seed + 1, day_first=config.data.generator.day_first,
                                          noise_rate=config.data.generator.noise_rate):
                truth.append((example.iso, example.noisy, example.format))
                yield example.raw

        write_lines(path, lines())
        corpus = Corpus(path, n, truth=truth)
    elif model_key == "translate":
        path = os.path.join(directory, f"translate-{n}.txt")
        reference = []

        def lines():
            for source, target in language.pairs(n, args.seed + 1):
                reference.append(len(target.split()))
                yield source

        write_lines(path, lines())
        corpus = Corpus(path, n, reference_tokens=statistics.fmean(reference) if reference else None)
    elif model_key == "reber":
        from seqbeam.transforms.reber_generator import generate_reber

        path = os.path.join(directory, f"reber-{n}.txt")
        write_lines(path, (e.text for e in generate_reber(n, args.seed + 1)))
        corpus = Corpus(path, n)
    else:
        raise ValueError(model_key)
    corpus.seconds = time.perf_counter() - started
    return corpus


# --------------------------------------------------------------------------- models


def preprocess_and_train(config) -> dict:
    """Preprocess, train and export one config with the real jobs; stage seconds and the summary."""
    from seqbeam.models.inputs import load_metadata
    from seqbeam.pipelines import preprocess, train

    stages: dict[str, float] = {}
    started = time.perf_counter()
    preprocess.run_config(config, save_main_session=False)
    stages["preprocess"] = time.perf_counter() - started
    metadata = load_metadata(preprocess.data_dir(config))
    started = time.perf_counter()
    summary = train.run_config(config, export=True)
    stages["train + export"] = time.perf_counter() - started
    summary.pop("model", None)
    _forget_models()
    return {"stages": stages, "summary": summary, "metadata": metadata}


class Models:
    """Trains each model the first time it is needed; keeps the exports and their training facts."""

    def __init__(self, args, workdir: str):
        self._args = args
        self._workdir = workdir
        self.trained: dict[str, dict] = {}
        self.language: Optional[SyntheticLanguage] = None

    def config_file(self, key: str) -> str:
        return {"emoji_v1": "emoji.yaml", "emoji_v2": "emoji.yaml", "dates": "dates.yaml",
                "translate": "translate.yaml", "reber": "reber.yaml"}[key]

    def training_overrides(self, key: str) -> list[str]:
        args = self._args
        out = [f"output_dir={_q(os.path.join(self._workdir, 'models', key))}"]
        if key.startswith("emoji"):
            family = "emojifier_v1" if key == "emoji_v1" else "emojifier_v2"
            out += [f"train.model.family={family}", f"train.epochs={args.emoji_epochs}",
                    "train.early_stopping_patience=0"]
        elif key == "dates":
            out += [f"data.generator.num_rows={args.dates_rows}", f"train.epochs={args.dates_epochs}"]
        elif key == "translate":
            out += [f"data.path={_q(self.translate_corpus())}", f"preprocess.source_vocab.max_size={VOCAB_MAX}",
                    f"preprocess.target_vocab.max_size={VOCAB_MAX}", f"train.model.units={TRANSLATE_UNITS}",
                    f"train.epochs={args.translate_epochs}", f"train.batch_size={args.translate_batch}",
                    "train.early_stopping_patience=0"]
        elif key == "reber":
            out += [f"train.epochs={args.reber_epochs}"]
            if args.reber_rows:
                out.append(f"data.generator.num_rows={args.reber_rows}")
        return out

    def translate_corpus(self) -> str:
        """The synthetic parallel corpus, Anki layout (source<TAB>target<TAB>attribution)."""
        path = os.path.join(self._workdir, "inputs", "translate-pairs.tsv")
        if not os.path.isfile(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_lines(path, (f"{s}\t{t}\tsynthetic" for s, t in
                               self.synthetic_language().pairs(self._args.translate_pairs, self._args.seed)))
        return path

    def synthetic_language(self) -> SyntheticLanguage:
        if self.language is None:
            self.language = SyntheticLanguage(self._args.translate_lexicon, self._args.seed)
        return self.language

    def get(self, key: str) -> dict:
        if key in self.trained:
            return self.trained[key]
        print(f"  training {key} ...", flush=True)
        config = load_task(self.config_file(key), self.training_overrides(key))
        started = time.perf_counter()
        run = preprocess_and_train(config)
        seconds = time.perf_counter() - started
        summary, metadata = run["summary"], run["metadata"]
        info = {
            "model_path": summary["model_path"], "config": f"configs/{self.config_file(key)}",
            "overrides": self.training_overrides(key), "family": config.train.model.family,
            "rows": metadata["rows"], "vocab_sizes": metadata.get("vocab_sizes"),
            "max_lengths": metadata.get("max_lengths"), "epochs_run": summary.get("epochs_run"),
            "metrics": summary.get("metrics"), "stages_seconds": run["stages"], "seconds": seconds,
        }
        self.trained[key] = info
        test = (summary.get("metrics") or {}).get("test") or (summary.get("metrics") or {}).get("valid")
        print(f"  trained {key} ({info['family']}): rows {metadata['rows']}, vocab {metadata.get('vocab_sizes')}, "
              f"{info['epochs_run']} epoch(s), {seconds:.0f} s (" + ", ".join(
                  f"{k} {v:.1f} s" for k, v in run["stages"].items()) + f"); held-out metrics {test}", flush=True)
        return info


# --------------------------------------------------------------------------- one inference run


def infer_config(model_key: str, models: Models, corpus_path: str, output_dir: str, extra: Sequence[str]):
    overrides = [f"output_dir={_q(output_dir)}", f"infer.model_path={_q(models.get(model_key)['model_path'])}",
                 f"infer.input={_q({'format': 'text', 'path': corpus_path})}", *extra]
    return load_task(models.config_file(model_key), overrides)


def run_job(config) -> dict:
    """Runs the inference job once in this process: summary, wall seconds, peak RSS."""
    from seqbeam.pipelines import infer

    with TreeRssSampler() as sampler, OtherLoad() as load:
        started = time.perf_counter()
        summary = infer.run_config(config, save_main_session=False)
        wall = time.perf_counter() - started
    return {"summary": summary, "wall_seconds": wall, "peak_rss_mib": sampler.peak / MIB,
            "processes": sampler.peak_processes, "own_cores": load.own_cores, "other_cores": load.other_cores,
            "steal_cores": load.steal_cores}


def read_predictions(summary: dict):
    import pyarrow.parquet as pq

    if not os.path.isdir(summary["predictions"]):
        return None
    return pq.read_table(summary["predictions"])


def comparable_output(model_key: str, table):
    """(sorted ids, one comparable array per row or per sentence) of a prediction table."""
    import pyarrow.compute as pc

    table = table.sort_by("id")
    if model_key.startswith("emoji"):
        return table["id"], pc.list_flatten(table["sentences"]).combine_chunks().field("label")
    column = {"dates": "output", "translate": "translation", "reber": "grammatical"}[model_key]
    return table["id"], table[column]


def output_figures(model_key: str, table, corpus: Corpus, max_target: Optional[int]) -> dict:
    """What the prediction table says: sentences (emoji), lengths (translate), exact match (dates)."""
    import pyarrow.compute as pc

    figures: dict[str, Any] = {"rows_read_back": table.num_rows}
    if model_key.startswith("emoji"):
        figures["sentences"] = int(pc.sum(pc.list_value_length(table["sentences"])).as_py() or 0)
        figures["input_sentences"] = corpus.sentences  # as written here: the job should cut lines back into them
    elif model_key == "translate":
        tokens = pc.count_substring_regex(table["translation"], r"[^\W_]+|[^\w\s]")
        figures["mean_output_tokens"] = pc.mean(tokens).as_py()
        figures["reference_tokens"] = corpus.reference_tokens
        if max_target:
            # The decoder writes at most max_target tokens, <end> included: max_target tokens = no <end>.
            figures["cut_at_max_length"] = pc.mean(pc.cast(pc.greater_equal(tokens, max_target),
                                                           "float64")).as_py()
    elif model_key == "dates" and corpus.truth is not None:
        exact = collections.Counter()
        total = collections.Counter()
        numbers = line_numbers(corpus.path)
        for row_id, iso in zip(table["id"].to_pylist(), table["iso_date"].to_pylist()):
            truth, noisy, _ = corpus.truth[line_number(row_id, numbers) - 1]
            total[noisy] += 1
            exact[noisy] += iso == truth
        figures["exact_clean"] = exact[False] / total[False] if total[False] else None
        figures["exact_noisy"] = exact[True] / total[True] if total[True] else None
        figures["exact_all"] = sum(exact.values()) / sum(total.values()) if total else None
    return figures


# --------------------------------------------------------------------------- 1. throughput


def planned_sizes(label: str, args) -> tuple[list[int], list[int], Optional[str]]:
    """(sizes to run, sizes skipped, why) for one task."""
    cap, why = None, None
    if label == "translate greedy":
        cap, why = args.translate_max_rows, "--translate-max-rows"
    elif label == "translate beam 4":
        cap, why = args.beam_max_rows, "--beam-max-rows"
    for item in args.max_rows:
        name, _, value = item.rpartition("=")
        if name == label:
            cap, why = int(value), f"--max-rows {item}"
    sizes = sorted(set(args.sizes))
    if cap is None:
        return sizes, [], None
    run = [n for n in sizes if n <= cap]
    skipped = [n for n in sizes if n > cap]
    if skipped and cap not in run:
        run.append(cap)
    return run, skipped, f"over the cap {cap:,} ({why})"


def run_throughput(args, workdir: str, models: Models) -> dict:
    labels = [label for label in RUNS if label in args.tasks]
    print(f"\n## 1. Inference throughput (sizes {', '.join(f'{n:,}' for n in sorted(set(args.sizes)))}; "
          f"each size with the config's length buckets, then without: infer.length_buckets=[])", flush=True)
    results: list[dict] = []
    skipped_notes: list[str] = []
    for label in labels:
        model_key, extra = RUNS[label]
        sizes, skipped, why = planned_sizes(label, args)
        if skipped:
            note = f"{label}: sizes {', '.join(f'{n:,}' for n in skipped)} skipped: {why}" + (
                f"; measured at {sizes[-1]:,} instead" if sizes else "")
            skipped_notes.append(note)
            print(f"  {note}", flush=True)
        model = models.get(model_key)
        max_target = (model.get("max_lengths") or {}).get("target")
        for n in sizes:
            if model_key == "translate":
                models.synthetic_language()
            corpus = make_corpus(model_key, n, args, workdir, models.language)
            tables = {}
            for mode, mode_extra in (("buckets", ()), ("no buckets", ("infer.length_buckets=[]",))):
                output_dir = os.path.join(workdir, "infer", label.replace(" ", "_"), str(n), mode.replace(" ", "_"))
                config = infer_config(model_key, models, corpus.path, output_dir, [*extra, *mode_extra])
                job = run_job(config)
                summary = job["summary"]
                rows = summary["rows"]
                table = read_predictions(summary)
                figures = output_figures(model_key, table, corpus, max_target) if table is not None else {}
                job_s = summary["seconds"]
                unit, target = TARGETS.get(label, ("rows", None))
                sentences = figures.get("sentences")
                if unit == "sentences":  # emoji: sentences in the output; translation: one sentence per row
                    count = sentences if sentences is not None else rows["in"]
                    units_per_s = count / job_s if job_s else None
                else:
                    units_per_s = summary["rows_per_second"]
                result = {
                    "task": label, "model": model_key, "rows": n, "mode": mode,
                    "length_buckets": list(config.infer.length_buckets), "max_batch_size": config.infer.max_batch_size,
                    "signature": summary["signature"], "counts": rows, "job_seconds": job_s,
                    "job_rows_per_second": summary["rows_per_second"], "wall_seconds": job["wall_seconds"],
                    "wall_rows_per_second": n / job["wall_seconds"], "peak_rss_mib": job["peak_rss_mib"],
                    "processes": job["processes"], "own_cores": job["own_cores"],
                    "other_cores": job["other_cores"], "steal_cores": job["steal_cores"],
                    "input_seconds": corpus.seconds, **figures,
                    "sentences_per_second": sentences / job_s if sentences is not None and job_s else None,
                    "target_unit": unit, "target_per_second": target, "per_second_for_target": units_per_s,
                    "target_met": None if target is None else units_per_s >= target,
                }
                if mode == "no buckets" and table is not None and "buckets" in tables:
                    ids_a, out_a = tables["buckets"]
                    ids_b, out_b = comparable_output(model_key, table)
                    if ids_a.equals(ids_b) and len(out_a) == len(out_b):
                        import pyarrow.compute as pc

                        same = pc.sum(pc.cast(pc.equal(out_a, out_b), "int64")).as_py() or 0
                        result["same_as_bucketed"] = same / len(out_a) if len(out_a) else None
                    else:
                        result["same_as_bucketed"] = None
                elif table is not None:
                    tables[mode] = comparable_output(model_key, table)
                results.append(result)
                print("  " + progress_line(result), flush=True)
                del table
                shutil.rmtree(output_dir, ignore_errors=True)
            if not args.keep:
                os.remove(corpus.path)
    print()
    print(throughput_table(results))
    for note in skipped_notes:
        print(f"skipped: {note}")
    extra_lines = translate_lines(results) + dates_accuracy_lines(results)
    for line in extra_lines:
        print(line)
    return {"runs": results, "skipped": skipped_notes}


def progress_line(r: dict) -> str:
    counts = r["counts"]
    parts = [f"{r['task']:16s} {r['rows']:>9,} rows, {r['mode']:10s}: job {r['job_seconds']:7.1f} s "
             f"{_num(r['job_rows_per_second']):>8} rows/s, wall {r['wall_seconds']:7.1f} s "
             f"{_num(r['wall_rows_per_second']):>8} rows/s; in/out/rejected {counts['in']:,}/{counts['out']:,}/"
             f"{counts['rejected']:,}; peak RSS {r['peak_rss_mib']:,.0f} MiB; cores used {r['own_cores']:.2f}, "
             f"by other processes {r['other_cores']:.2f}"]
    if r.get("sentences_per_second") is not None:
        parts.append(f"{r['sentences']:,} sentences, {r['sentences_per_second']:,.0f} sentences/s")
        if r.get("input_sentences") is not None and r["input_sentences"] != r["sentences"]:
            parts.append(f"WARNING: {r['input_sentences']:,} sentences written in the input")
    if r.get("mean_output_tokens") is not None:
        parts.append(f"mean output {r['mean_output_tokens']:.1f} tokens (reference {r['reference_tokens']:.1f}), "
                     f"cut at max length {_pct(r.get('cut_at_max_length'), 1)}")
    if r.get("exact_all") is not None:
        parts.append(f"exact clean {_pct(r['exact_clean'])}, noisy {_pct(r['exact_noisy'])}")
    if "same_as_bucketed" in r:
        parts.append(f"same as bucketed {_pct(r['same_as_bucketed'])}")
    if r["target_per_second"] is not None:
        parts.append(f"target {r['target_unit']}/s >= {r['target_per_second']:,.0f}: "
                     f"{_mark(r['per_second_for_target'], r['target_per_second'])}")
    return "; ".join(parts)


def throughput_table(results: Sequence[dict]) -> str:
    header = ["task", "rows", "batching", "job s", "job rows/s", "wall s", "wall rows/s", "in", "out", "rejected",
              "sentences/s", "peak RSS MiB", "cores used / other", "same as bucketed", "target", "met"]
    rows = []
    for r in results:
        counts = r["counts"]
        target = "" if r["target_per_second"] is None else f">= {r['target_per_second']:,.0f} {r['target_unit']}/s"
        rows.append([
            r["task"], f"{r['rows']:,}", r["mode"], f"{r['job_seconds']:.1f}", _num(r["job_rows_per_second"]),
            f"{r['wall_seconds']:.1f}", _num(r["wall_rows_per_second"]), f"{counts['in']:,}", f"{counts['out']:,}",
            f"{counts['rejected']:,}", _num(r.get("sentences_per_second")), f"{r['peak_rss_mib']:,.0f}",
            f"{r['own_cores']:.2f} / {r['other_cores']:.2f}",
            _pct(r["same_as_bucketed"]) if "same_as_bucketed" in r else "",
            target, "" if r["target_met"] is None else ("ok" if r["target_met"] else "MISS"),
        ])
    return _md_table(header, rows, ["---", "---:", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:",
                                    "---:", "---:", "---:", "---:", "---", "---"])


def translate_lines(results: Sequence[dict]) -> list[str]:
    lines = []
    for r in results:
        if r.get("mean_output_tokens") is not None:
            lines.append(f"{r['task']}, {r['rows']:,} rows, {r['mode']}: mean output {r['mean_output_tokens']:.2f} "
                         f"tokens (reference translations {r['reference_tokens']:.2f}), "
                         f"{_pct(r.get('cut_at_max_length'), 1)} cut at the model's target length")
    return lines


def dates_accuracy_lines(results: Sequence[dict]) -> list[str]:
    return [f"dates, {r['rows']:,} rows, {r['mode']}: exact match clean {_pct(r['exact_clean'])}, noisy "
            f"{_pct(r['exact_noisy'])}, all {_pct(r['exact_all'])}" for r in results if r.get("exact_all") is not None]


# --------------------------------------------------------------------------- 2. dates vs libraries


def time_library(parse: Callable[[str], Any], examples: Sequence) -> dict:
    """Exact matches and rows/s of one library setting (one call per date, this process, one core)."""
    try:
        parse(examples[0].raw)  # warm-up, untimed (lazy imports, language data)
    except Exception:
        pass
    correct = []
    with OtherLoad() as load:
        started = time.perf_counter()
        for example in examples:
            try:
                result = parse(example.raw)
                correct.append(result is not None and result.date().isoformat() == example.iso)
            except Exception:  # noqa: BLE001 - any failure counts as wrong
                correct.append(False)
        seconds = time.perf_counter() - started
    return {"correct": correct, "seconds": seconds, "other_cores": load.other_cores}


def run_dates(args, workdir: str, models: Models) -> dict:
    from seqbeam.transforms.date_generator import FORMATS, generate_dates

    n = args.dates_compare_rows
    print(f"\n## 2. Dates: seqbeam vs python-dateutil and dateparser ({n:,} clean + {n:,} noisy dates, "
          f"month-first numeric formats; libraries single-process, one core)", flush=True)
    model = models.get("dates")
    clean = list(generate_dates(n, args.seed + 2, day_first=False, noise_rate=0.0))
    noisy = list(generate_dates(n, args.seed + 3, day_first=False, noise_rate=1.0))
    examples = clean + noisy
    directory = os.path.join(workdir, "inputs")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "dates-compare.txt")
    write_lines(path, (e.raw for e in examples))

    # seqbeam: the inference job on the whole file, joined on id.
    output_dir = os.path.join(workdir, "infer", "dates-compare")
    config = infer_config("dates", models, path, output_dir, [])
    job = run_job(config)
    summary = job["summary"]
    table = read_predictions(summary)
    predicted: dict[int, Optional[str]] = {}
    if table is not None:
        numbers = line_numbers(path)
        for row_id, iso in zip(table["id"].to_pylist(), table["iso_date"].to_pylist()):
            predicted[line_number(row_id, numbers)] = iso
    seqbeam_correct = [predicted.get(i + 1) == e.iso for i, e in enumerate(examples)]
    methods: dict[str, dict] = {"seqbeam": {
        "library": "seqbeam", "settings": f"infer job, model {os.path.basename(model['model_path'])}, "
        f"length buckets {list(config.infer.length_buckets)}",
        "correct": seqbeam_correct, "rows_per_second": summary["rows_per_second"],
        "wall_rows_per_second": len(examples) / job["wall_seconds"], "counts": summary["rows"],
        "peak_rss_mib": job["peak_rss_mib"], "other_cores": job["other_cores"]}}
    print(f"  seqbeam job: {summary['rows']}, {summary['seconds']:.1f} s, {_num(summary['rows_per_second'])} rows/s "
          f"(wall {job['wall_seconds']:.1f} s; cores used {job['own_cores']:.2f}, by other processes "
          f"{job['other_cores']:.2f})", flush=True)
    shutil.rmtree(output_dir, ignore_errors=True)

    for label, (library, settings, parse) in _library_settings().items():
        if args.skip_dateparser and library == "dateparser":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clean_run = time_library(parse, clean)
            noisy_run = time_library(parse, noisy)
        seconds = clean_run["seconds"] + noisy_run["seconds"]
        methods[label] = {"library": library, "settings": settings,
                          "correct": clean_run["correct"] + noisy_run["correct"],
                          "rows_per_second": len(examples) / seconds if seconds else None,
                          "clean_rows_per_second": n / clean_run["seconds"] if clean_run["seconds"] else None,
                          "noisy_rows_per_second": n / noisy_run["seconds"] if noisy_run["seconds"] else None,
                          "other_cores": (clean_run["other_cores"] * clean_run["seconds"]
                                          + noisy_run["other_cores"] * noisy_run["seconds"]) / seconds
                          if seconds else None}
        print(f"  {label}: {seconds:.1f} s (cores used by other processes meanwhile: "
              f"{methods[label]['other_cores']:.2f})", flush=True)

    for m in methods.values():
        c = m.pop("correct")
        m["clean_exact"] = sum(c[:n]) / n if n else None
        m["noisy_exact"] = sum(c[n:]) / n if n else None
        m["per_format"] = {}
        for fmt in FORMATS:
            hits = [ok for ok, e in zip(c[:n], clean) if e.format == fmt]
            noisy_hits = [ok for ok, e in zip(c[n:], noisy) if e.format == fmt]
            m["per_format"][fmt] = {"clean_n": len(hits), "clean": sum(hits) / len(hits) if hits else None,
                                    "noisy_n": len(noisy_hits),
                                    "noisy": sum(noisy_hits) / len(noisy_hits) if noisy_hits else None}
    methods["seqbeam"]["clean_misses"] = [
        (e.raw, e.iso, predicted.get(i + 1)) for i, e in enumerate(clean) if predicted.get(i + 1) != e.iso][:10]

    def best(library: str) -> Optional[str]:
        candidates = [k for k, m in methods.items() if m["library"] == library]
        return max(candidates, key=lambda k: (methods[k]["clean_exact"], methods[k]["noisy_exact"]), default=None)

    best_dateutil, best_dateparser = best("python-dateutil"), best("dateparser")
    s = methods["seqbeam"]

    print()
    header = ["method", "settings", "clean exact", "noisy exact", "rows/s (clean+noisy)", "clean rows/s",
              "noisy rows/s", "other processes (cores)"]
    rows = []
    for label, m in methods.items():
        mark = " (best)" if label in (best_dateutil, best_dateparser) else ""
        rows.append([label + mark, m["settings"], _pct(m["clean_exact"]), _pct(m["noisy_exact"]),
                     _num(m["rows_per_second"]), _num(m.get("clean_rows_per_second")),
                     _num(m.get("noisy_rows_per_second")), _num(m.get("other_cores"), 2)])
    print(_md_table(header, rows, ["---", "---", "---:", "---:", "---:", "---:", "---:", "---:"]))
    print("(seqbeam rows/s: the job summary's, one job over the clean and noisy rows together, model load and Beam "
          "start-up included; wall "
          f"{_num(s['wall_rows_per_second'])} rows/s. Libraries: one call per date in this process, one core.)")

    print()
    shown = ["seqbeam"] + [k for k in (best_dateutil, best_dateparser) if k]
    fmt_rows = []
    for fmt in FORMATS:
        pf = s["per_format"][fmt]
        fmt_rows.append([fmt, str(pf["clean_n"])] + [_pct(methods[k]["per_format"][fmt]["clean"]) for k in shown]
                        + [str(pf["noisy_n"])] + [_pct(methods[k]["per_format"][fmt]["noisy"]) for k in shown])
    print(_md_table(["format", "clean n", *[f"{k} clean" for k in shown], "noisy n", *[f"{k} noisy" for k in shown]],
                    fmt_rows, ["---"] + ["---:"] * (2 * len(shown) + 2)))
    if s["clean_misses"]:
        print("  seqbeam clean misses (raw -> truth / iso_date): " + "; ".join(
            f"{raw!r} -> {iso} / {got}" for raw, iso, got in s["clean_misses"]))

    checks = {
        "clean": {"value": s["clean_exact"], "target": TARGET_DATES_CLEAN, "met": (s["clean_exact"] or 0) >= TARGET_DATES_CLEAN},
        "noisy_margin_over_dateutil": {
            "value": None if best_dateutil is None else s["noisy_exact"] - methods[best_dateutil]["noisy_exact"],
            "against": best_dateutil, "target": TARGET_NOISY_MARGIN},
        "rows_per_second": {"value": s["rows_per_second"], "target": TARGET_DATES_PER_S},
    }
    margin = checks["noisy_margin_over_dateutil"]
    margin["met"] = None if margin["value"] is None else margin["value"] >= TARGET_NOISY_MARGIN
    checks["rows_per_second"]["met"] = (s["rows_per_second"] or 0) >= TARGET_DATES_PER_S
    print(f"\n  targets: clean exact {_pct(s['clean_exact'])} >= {100 * TARGET_DATES_CLEAN:g} %: "
          f"{'ok' if checks['clean']['met'] else 'MISS'}; noisy {_pct(s['noisy_exact'])} vs {best_dateutil} "
          f"{_pct(methods[best_dateutil]['noisy_exact']) if best_dateutil else 'n/a'}: "
          f"{_points(margin['value'])} "
          f"(>= +{100 * TARGET_NOISY_MARGIN:g}): {_met(margin['met'])}; job {_num(s['rows_per_second'])} dates/s "
          f">= {TARGET_DATES_PER_S:,.0f}: {_met(checks['rows_per_second']['met'])} (this small job; see section 1)",
          flush=True)
    if not args.keep:
        os.remove(path)
    return {"rows_each": n, "methods": methods, "best": {"python-dateutil": best_dateutil,
                                                         "dateparser": best_dateparser}, "checks": checks}


def _points(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} points"


def _met(value: Optional[bool]) -> str:
    return "n/a" if value is None else ("ok" if value else "MISS")


# --------------------------------------------------------------------------- report


def headline_rows(results: dict) -> list[list[str]]:
    rows = []
    throughput = results.get("throughput") or {}
    by_task: dict[str, list[dict]] = collections.defaultdict(list)
    for r in throughput.get("runs", []):
        by_task[r["task"]].append(r)
    for label, runs in by_task.items():
        largest = max(r["rows"] for r in runs)
        for r in runs:
            if r["rows"] != largest:
                continue
            unit, target = r["target_unit"], r["target_per_second"]
            value = f"{_num(r['per_second_for_target'])} {unit}/s"
            rows.append(["throughput", f"{label}, {largest:,} rows, {r['mode']}", value,
                         "" if target is None else f">= {target:,.0f} {unit}/s {_mark(r['per_second_for_target'], target)}"])
    dates = results.get("dates")
    if dates:
        s = dates["methods"]["seqbeam"]
        checks = dates["checks"]
        rows.append(["dates", f"seqbeam exact, clean ({dates['rows_each']:,})", _pct(s["clean_exact"]),
                     f">= {100 * TARGET_DATES_CLEAN:g} % {_met(checks['clean']['met'])}"])
        margin = checks["noisy_margin_over_dateutil"]
        rows.append(["dates", f"seqbeam exact, noisy ({dates['rows_each']:,})", _pct(s["noisy_exact"]),
                     f"{margin['against']} + {100 * TARGET_NOISY_MARGIN:g} points {_met(margin['met'])}"])
        for label in (dates["best"]["python-dateutil"], dates["best"]["dateparser"]):
            if label:
                m = dates["methods"][label]
                rows.append(["dates", f"{label}: clean / noisy exact, rows/s", f"{_pct(m['clean_exact'])} / "
                             f"{_pct(m['noisy_exact'])}, {_num(m['rows_per_second'])}", m["settings"]])
        rows.append(["dates", "seqbeam job rows/s (comparison run)", _num(s["rows_per_second"]),
                     f">= {TARGET_DATES_PER_S:,.0f} {_met(checks['rows_per_second']['met'])}"])
    return rows


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and epochs (a few minutes): checks that everything runs; figures are not "
                             "meaningful")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="what to run (default: all)")
    parser.add_argument("--tasks", nargs="+", choices=tuple(RUNS), default=list(RUNS),
                        help="throughput runs (default: all)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N",
                        help=f"input rows per throughput run (default {DEFAULTS['sizes'][0]}, "
                             f"quick {DEFAULTS['sizes'][1]})")
    parser.add_argument("--translate-max-rows", type=int, default=None,
                        help=f"largest greedy translation run (default {DEFAULTS['translate_max_rows'][0]:,})")
    parser.add_argument("--beam-max-rows", type=int, default=None,
                        help=f"largest beam-search translation run (default {DEFAULTS['beam_max_rows'][0]:,})")
    parser.add_argument("--max-rows", action="append", default=[], metavar="TASK=N",
                        help="largest run of a task, e.g. --max-rows 'emoji V2=100000' (repeatable)")
    parser.add_argument("--dates-compare-rows", type=int, default=None,
                        help=f"clean dates, and as many noisy ones, in section 2 "
                             f"(default {DEFAULTS['dates_compare_rows'][0]:,})")
    parser.add_argument("--skip-dateparser", action="store_true", help="section 2 without dateparser (slow)")
    parser.add_argument("--emoji-epochs", type=int, default=None,
                        help=f"emoji V1/V2 epochs (default {DEFAULTS['emoji_epochs'][0]})")
    parser.add_argument("--dates-rows", type=int, default=None,
                        help=f"generated training dates (default {DEFAULTS['dates_rows'][0]:,})")
    parser.add_argument("--dates-epochs", type=int, default=None,
                        help=f"date normalizer epochs (default {DEFAULTS['dates_epochs'][0]}; early stopping as "
                             "in configs/dates.yaml)")
    parser.add_argument("--translate-pairs", type=int, default=None,
                        help=f"synthetic parallel pairs (default {DEFAULTS['translate_pairs'][0]:,})")
    parser.add_argument("--translate-epochs", type=int, default=None,
                        help=f"translation epochs (default {DEFAULTS['translate_epochs'][0]})")
    parser.add_argument("--translate-lexicon", type=int, default=None,
                        help=f"words per synthetic lexicon (default {DEFAULTS['translate_lexicon'][0]:,}; the "
                             f"vocabularies are capped at {VOCAB_MAX:,})")
    parser.add_argument("--translate-batch", type=int, default=None,
                        help=f"translation training batch size (default {DEFAULTS['translate_batch'][0]})")
    parser.add_argument("--reber-epochs", type=int, default=None,
                        help=f"Reber classifier epochs (default {DEFAULTS['reber_epochs'][0]})")
    parser.add_argument("--reber-rows", type=int, default=None, help="generated Reber training rows (default: "
                        "configs/reber.yaml's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpora made here (default: %(default)s)")
    parser.add_argument("--work-dir", default=None,
                        help="where models, inputs and outputs go (default: a temporary folder, deleted at the end "
                             "unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and the input files")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--verbose", action="store_true", help="show the jobs' INFO logs")
    args = parser.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if any(n < 1 for n in args.sizes):
        parser.error("--sizes must be positive")
    for item in args.max_rows:
        name, sep, value = item.rpartition("=")
        if not sep or name not in RUNS or not value.isdigit():
            parser.error(f"--max-rows {item!r}: expected TASK=N with TASK one of {', '.join(RUNS)}")
    for name in ("translate_max_rows", "beam_max_rows", "dates_compare_rows", "emoji_epochs", "dates_rows",
                 "dates_epochs", "translate_pairs", "translate_epochs", "translate_lexicon", "reber_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


class _DropBeamNoise(logging.Filter):
    """Drops Beam's per-batch 'Resource module is not available' warning (RunInference memory probe)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Resource module is not available")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
        handler.addFilter(_DropBeamNoise())
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")

    temporary = args.work_dir is None
    workdir = tempfile.mkdtemp(prefix="seqbeam-infer-bench-") if temporary else os.path.abspath(args.work_dir)
    os.makedirs(workdir, exist_ok=True)

    import apache_beam
    import dateparser
    import dateutil
    import keras
    import psutil
    import tensorflow as tf

    environment = {"cpus": psutil.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
                   "keras": keras.__version__, "apache_beam": apache_beam.__version__,
                   "dateparser": dateparser.__version__, "python_dateutil": dateutil.__version__,
                   "ram_gib": psutil.virtual_memory().total / 2**30, "platform": platform.platform(),
                   "gpus": len(tf.config.list_physical_devices("GPU"))}
    print(f"seqbeam inference benchmark{' (--quick: tiny sizes/epochs, figures not meaningful)' if args.quick else ''}"
          f": sections {', '.join(args.sections)}")
    print(f"{environment['cpus']} CPUs, {environment['ram_gib']:.1f} GiB RAM, GPUs {environment['gpus']}; "
          f"python {environment['python']}, tensorflow {environment['tensorflow']}, keras {environment['keras']}, "
          f"apache-beam {environment['apache_beam']}, dateparser {environment['dateparser']}, python-dateutil "
          f"{environment['python_dateutil']}; Beam local runner in this process; workdir {workdir}", flush=True)
    results: dict[str, Any] = {}
    models = Models(args, workdir)
    runners = {"throughput": run_throughput, "dates": run_dates}
    started_all = time.perf_counter()
    try:
        for section in SECTIONS:
            if section in args.sections:
                started = time.perf_counter()
                results[section] = runners[section](args, workdir, models)
                print(f"  ({section}: {time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["models"] = models.trained

    print("\n## Models trained for this run\n")
    print(_md_table(["model", "family", "train/valid/test rows", "vocab", "epochs", "train s", "held-out metrics"],
                    [[k, m["family"], "/".join(str(m["rows"].get(s, 0)) for s in ("train", "valid", "test")),
                      json.dumps(m["vocab_sizes"]), str(m["epochs_run"]), f"{m['seconds']:.0f}",
                      json.dumps({s: {k2: round(v, 4) for k2, v in (vals or {}).items()}
                                  for s, vals in (m["metrics"] or {}).items()})]
                     for k, m in models.trained.items()], ["---", "---", "---:", "---", "---:", "---:", "---"]))
    print("\n## Headline figures\n")
    print(_md_table(["section", "figure", "value", "target"], headline_rows(results), ["---", "---", "---:", "---"]))
    wall = time.perf_counter() - started_all
    print(f"\n(benchmark wall time {wall:.0f} s)")
    if args.json:
        payload = {"results": results, "quick": args.quick, "wall_seconds": wall,
                   "arguments": {k: v for k, v in vars(args).items() if k != "json"}, "environment": environment}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, ensure_ascii=False, default=str)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
