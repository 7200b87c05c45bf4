"""The models, input corpora and job runs both sections of benchmarks/infer.py measure.

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
"""

from __future__ import annotations

import csv
import logging
import os
import random
import statistics
import time
from typing import Optional, Sequence

from common import _PROGRESS, ROOT, load_task, override, preprocess_and_train, synthetic_words, write_lines
from reporting import MIB, OtherLoad, TreeRssSampler

EMOJI_CSV = os.path.join(ROOT, "data", "emoji_sentences.csv")
CONFIG_FILES = {"emoji_v1": "emoji.yaml", "emoji_v2": "emoji.yaml", "dates": "dates.yaml",
                "translate": "translate.yaml", "reber": "reber.yaml"}

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


# --------------------------------------------------------------------------- corpora


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


def emoji_sentences() -> list[str]:
    """The shipped sentences, each ending in punctuation (so the job cuts a line back into them)."""
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
        self.truth = truth  # dates: (iso, noisy, format) per line
        self.sentences = sentences
        self.reference_tokens = reference_tokens
        self.seconds = seconds


def make_corpus(model_key: str, n: int, seed: int, workdir: str, language: Optional[SyntheticLanguage]) -> Corpus:
    """Writes the input file of ``n`` rows for a task (the same seed for every size: prefixes)."""
    directory = os.path.join(workdir, "inputs")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{model_key.split('_')[0]}-{n}.txt")
    started = time.perf_counter()
    if model_key.startswith("emoji"):
        counts = []

        def lines():
            for line, k in emoji_lines(n, seed):
                counts.append(k)
                yield line

        write_lines(path, lines())
        corpus = Corpus(path, n, sentences=sum(counts))
    elif model_key == "dates":
        from seqbeam.transforms.date_generator import generate_dates

        task = load_task("dates.yaml")
        generator = task.data.generator
        truth = []

        def lines():
            # A text file carries no day-order token: its rows are in the job's order (infer.day_first).
            for example in generate_dates(n, seed, day_first=task.infer.day_first, noise_rate=generator.noise_rate,
                                          real_world_rate=generator.real_world_rate):
                truth.append((example.iso, example.noisy, example.format))
                yield example.raw

        write_lines(path, lines())
        corpus = Corpus(path, n, truth=truth)
    elif model_key == "translate":
        reference = []

        def lines():
            for source, target in language.pairs(n, seed):
                reference.append(len(target.split()))
                yield source

        write_lines(path, lines())
        corpus = Corpus(path, n, reference_tokens=statistics.fmean(reference) if reference else None)
    elif model_key == "reber":
        from seqbeam.transforms.reber_generator import generate_reber

        write_lines(path, (e.text for e in generate_reber(n, seed)))
        corpus = Corpus(path, n)
    else:
        raise ValueError(model_key)
    corpus.seconds = time.perf_counter() - started
    return corpus


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


# --------------------------------------------------------------------------- models


class Models:
    """Trains each model the first time it is needed; keeps the exports and their training facts."""

    def __init__(self, args, workdir: str):
        self._args = args
        self._workdir = workdir
        self.trained: dict[str, dict] = {}
        self.language: Optional[SyntheticLanguage] = None

    def training_overrides(self, key: str) -> list[str]:
        """The ``--set`` overrides a model is trained with, on top of its config file."""
        args = self._args
        out = [override("output_dir", os.path.join(self._workdir, "models", key))]
        if key.startswith("emoji"):
            family = "emojifier_v1" if key == "emoji_v1" else "emojifier_v2"
            out += [f"train.model.family={family}", f"train.epochs={args.emoji_epochs}",
                    "train.early_stopping_patience=0"]
        elif key == "dates":
            out += [f"data.generator.num_rows={args.dates_rows}", f"train.epochs={args.dates_epochs}"]
        elif key == "translate":
            out += [override("data.path", self.translate_corpus()), f"preprocess.source_vocab.max_size={VOCAB_MAX}",
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
        """The translation task's language (made once: its lexicons take a while)."""
        if self.language is None:
            self.language = SyntheticLanguage(self._args.translate_lexicon, self._args.seed)
        return self.language

    def get(self, key: str) -> dict:
        """The trained model ``key`` (``model_path`` and its training facts), trained on first use."""
        if key in self.trained:
            return self.trained[key]
        print(f"  training {key} ...", flush=True)
        overrides = self.training_overrides(key)
        config = load_task(CONFIG_FILES[key], overrides)
        started = time.perf_counter()
        run = preprocess_and_train(config)
        seconds = time.perf_counter() - started
        summary, metadata = run["summary"], run["metadata"]
        info = {
            "model_path": summary["model_path"], "config": f"configs/{CONFIG_FILES[key]}",
            "overrides": overrides, "family": config.train.model.family,
            "rows": metadata["rows"], "vocab_sizes": metadata.get("vocab_sizes"),
            "max_lengths": metadata.get("max_lengths"), "epochs_run": summary.get("epochs_run"),
            "metrics": summary.get("metrics"), "stages_seconds": run["stages"], "seconds": seconds,
        }
        self.trained[key] = info
        metrics = summary.get("metrics") or {}
        held_out = metrics.get("test") or metrics.get("valid")
        print(f"  trained {key} ({info['family']}): rows {metadata['rows']}, vocab {metadata.get('vocab_sizes')}, "
              f"{info['epochs_run']} epoch(s), {seconds:.0f} s (" + ", ".join(
                  f"{k} {v:.1f} s" for k, v in run["stages"].items()) + f"); held-out metrics {held_out}", flush=True)
        return info


# --------------------------------------------------------------------------- one inference run


def infer_config(model_key: str, models: Models, corpus_path: str, output_dir: str, extra: Sequence[str]):
    """The config serving ``model_key``'s model on a text file of one row per line."""
    overrides = [override("output_dir", output_dir), override("infer.model_path", models.get(model_key)["model_path"]),
                 override("infer.input", {"format": "text", "path": corpus_path}), *extra]
    return load_task(CONFIG_FILES[model_key], overrides)


def run_job(config, beam_args: Sequence[str] = ()) -> dict:
    """Runs the inference job once from this process: summary, wall seconds, peak RSS, cores used.

    ``cores used`` counts this process and its children (the SDK worker processes of
    ``--direct_running_mode=multi_processing``, waited for when the job ends); ``workers``:
    the distinct worker processes named by the job's progress lines, and the rows each handled.
    """
    from seqbeam.pipelines import infer

    watch, root = WorkerRows(), logging.getLogger()
    level = root.level
    root.addHandler(watch)
    root.setLevel(min(level, logging.INFO))  # the progress lines are INFO; the other handlers keep their level
    with TreeRssSampler() as sampler, OtherLoad() as load:
        started = time.perf_counter()
        try:
            summary = infer.run_config(config, list(beam_args), save_main_session=False)
        finally:
            root.removeHandler(watch)
            root.setLevel(level)
        wall = time.perf_counter() - started
    return {"summary": summary, "wall_seconds": wall, "peak_rss_mib": sampler.peak / MIB,
            "processes": sampler.peak_processes, "own_cores": load.own_cores, "other_cores": load.other_cores,
            "steal_cores": load.steal_cores, "rows_by_worker": watch.rows_by_worker()}


class WorkerRows(logging.Handler):
    """The rows each worker process reported in the inference job's progress lines (transforms/progress.py)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self._latest: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        # Worker processes' lines reach this process through Beam's logging service, already formatted.
        match = _PROGRESS.search(record.getMessage())
        if match and match.group(1) == "infer":
            self._latest[match.group(3)] = int(match.group(2))

    def rows_by_worker(self) -> dict[str, int]:
        """Worker pid -> rows (the last progress count of each of its DoFns, summed)."""
        by_pid: dict[str, int] = {}
        for tag, rows in self._latest.items():
            pid = tag.split("/")[0]
            by_pid[pid] = by_pid.get(pid, 0) + rows
        return by_pid


def read_predictions(config):
    """The job's prediction table (every Parquet file), or None when it wrote none."""
    import pyarrow.parquet as pq

    from seqbeam.pipelines.layout import predictions_dir

    directory = predictions_dir(config)
    return pq.read_table(directory) if os.path.isdir(directory) else None
