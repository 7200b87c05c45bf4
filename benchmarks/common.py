"""What the benchmark scripts share to run the jobs: task configs, the jobs, corpora, serving, the work dir.

The benchmarks run as scripts (``python benchmarks/<name>.py``) and import this module, and
``reporting`` (what they measure and print), from the folder they live in. Everything about
the jobs themselves (configs, output locations, generators, the SavedModel format) comes
from the seqbeam package.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from typing import Any, Iterable, Iterator, Optional, Sequence

import yaml

from reporting import MIB, tree_rss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
SERVE_BATCH = 1024
PROGRESS_EVERY = 20_000  # rows per progress line per worker: fine enough for 10 % marks at 1e6 rows
_PROGRESS = re.compile(r"progress (\w+): (\d+) rows by worker (\S+?) ")

# The Zipf words corpus (word level, classifier): benchmarks/preprocess.py, load.py, scale.py.
WORD_VOCABULARY_SIZE = 20_000
WORDS_PER_SENTENCE = (5, 20)
WORD_FILES = 4
NUM_LABELS = 5
ZIPF_EXPONENT = 1.07
COMMA_RATE = 0.06
SENTENCE_ENDS = (".", ".", ".", "!", "?", "...")
WORD_SYLLABLES = (["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
                   "br", "ch", "dr", "gl", "pl", "sh", "st", "th", "tr"],
                  ["a", "e", "i", "o", "u", "ai", "ea", "ou"], ["", "", "", "n", "r", "s", "t", "l", "m", "ng", "st"])
DATES_ROWS_PER_SHARD = 50_000


# --------------------------------------------------------------------------- task configs


def override(key: str, value: Any) -> str:
    """A ``--set``-style ``key=value`` (JSON is YAML: a path stays a string whatever it holds)."""
    return f"{key}={json.dumps(value) if isinstance(value, (str, dict, list)) else value}"


def load_task(config_file: str, overrides: Sequence[str] = ()):
    """``configs/<config_file>`` with the overrides, relative corpus paths resolved against the repository.

    The shipped configs name their corpora relative to the repository root (``data/...``);
    the benchmarks run from anywhere.
    """
    from seqbeam.configs.schema import load_config

    path = os.path.join(CONFIGS, config_file)
    config = load_config(path, list(overrides))
    extra = [override(key, os.path.join(ROOT, data.path))
             for key, data in (("data.path", config.data), ("infer.input.path", config.infer.input))
             if data is not None and data.path and "://" not in data.path and not os.path.isabs(data.path)]
    return load_config(path, [*overrides, *extra]) if extra else config


def dates_config(rows: int, seed: int, output_dir: str) -> dict:
    """``configs/dates.yaml`` with ``rows`` generated rows (50,000 a shard), as plain data."""
    return load_task("dates.yaml", [f"data.generator.num_rows={rows}", f"data.generator.seed={seed}",
                                    f"data.generator.rows_per_shard={DATES_ROWS_PER_SHARD}",
                                    override("output_dir", output_dir)]).to_dict()


def words_config(corpus_glob: str, output_dir: str) -> dict:
    """``configs/emoji.yaml`` on the words corpus (task ``words``, 32 tokens, 20k corpus vocabulary), as plain data.

    The made-up words have no pretrained vectors: the vocabulary is the corpus's alone.
    """
    return load_task("emoji.yaml", [
        "task.name=words", override("task.classes", [f"class{i}" for i in range(NUM_LABELS)]),
        override("data.path", corpus_glob), "preprocess.max_length=32", "preprocess.source_vocab.vectors=''",
        f"preprocess.source_vocab.max_size={WORD_VOCABULARY_SIZE}", override("output_dir", output_dir),
    ]).to_dict()


def write_config(config: dict, path: str) -> str:
    """Writes a config (plain data) as YAML for the ``seqbeam`` command line; returns the path."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
    return path


# --------------------------------------------------------------------------- the jobs, in this process


@contextlib.contextmanager
def stopwatch(stages: dict, name: str) -> Iterator[None]:
    """Records the wall seconds of the block as ``stages[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = time.perf_counter() - started


class EpochLog(logging.Handler):
    """Collects the seconds of each epoch from the training job's progress log lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith("epoch %d/%d") and record.args:
            self.seconds.append(float(record.args[2]))


def forget_models() -> None:
    """Frees the Keras/TF state of the last training: one process trains every model of a benchmark."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def preprocess_and_train(config, export: bool = True) -> dict:
    """Preprocesses, trains and (``export``) exports one config with the real jobs, in this process.

    Returns ``stages`` (seconds of ``preprocess``, ``train`` and ``export``), the training
    ``summary`` (with ``model_path`` once exported), the ``metadata`` of the data and
    ``epoch_seconds`` (filled when the ``seqbeam`` logger lets the jobs' INFO lines through).
    """
    from seqbeam.models.export import export_model
    from seqbeam.pipelines import layout, preprocess, train

    stages: dict[str, float] = {}
    with stopwatch(stages, "preprocess"):
        metadata = preprocess.run_config(config, save_main_session=False)
    epochs = EpochLog()
    logger = logging.getLogger("seqbeam")
    logger.addHandler(epochs)
    try:
        with stopwatch(stages, "train"):
            summary = train.run_config(config, export=False)
    finally:
        logger.removeHandler(epochs)
    model = summary.pop("model")
    if export:
        with stopwatch(stages, "export"):
            summary["model_path"] = export_model(config, model, metadata, layout.data_dir(config),
                                                 summary["metrics"], model_root=layout.model_root(config))
    del model
    forget_models()
    return {"stages": stages, "summary": summary, "metadata": metadata, "epoch_seconds": epochs.seconds}


def load_serving(model_path: str, signature: str = "serving_default"):
    """A signature of an exported model: takes ``text=`` a 1-D string batch, returns named tensors."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)

    return tf.saved_model.load(model_path).signatures[signature]


def serve(model: Any, texts: Sequence[str], output: str, batch_size: int = SERVE_BATCH,
          day_first: Optional[Sequence[bool]] = None) -> list:
    """One output of the serving signature for each raw text, in batches (``model``: a path or a signature).

    A date model's signature also takes ``day_first``: each text's order (default: month first).
    """
    import tensorflow as tf

    fn = load_serving(model) if isinstance(model, str) else model
    takes_day_first = "day_first" in fn.structured_input_signature[1]
    orders = list(day_first) if day_first is not None else [False] * len(texts)
    values: list = []
    for start in range(0, len(texts), batch_size):
        inputs = {"text": tf.constant(list(texts[start:start + batch_size]), dtype=tf.string)}
        if takes_day_first:
            inputs["day_first"] = tf.constant(orders[start:start + batch_size], dtype=tf.bool)
        values.extend(fn(**inputs)[output].numpy().tolist())
    return values


# --------------------------------------------------------------------------- the jobs, as a user runs them


def seqbeam_command(*args: str) -> list[str]:
    """The command line of a ``seqbeam`` job in this Python."""
    return [sys.executable, "-m", "seqbeam.pipelines.cli", *args]


def multi_processing(workers: int) -> list[str]:
    """The Beam flags of the local runner's ``multi_processing`` mode with ``workers`` workers."""
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]


def run_quietly(command: Sequence[str]) -> None:
    """Runs a command to its end, its output discarded; fails when it fails."""
    subprocess.run(list(command), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def train_model(train_config: dict, path: str) -> str:
    """Preprocesses and trains ``train_config`` with the ``seqbeam`` command line; the exported model's path."""
    from seqbeam.configs.schema import config_from_dict
    from seqbeam.pipelines.layout import model_root
    from seqbeam.transforms.inference import resolve_model_path

    write_config(train_config, path)
    for job in ("preprocess", "train"):
        run_quietly(seqbeam_command(job, "--config", path))
    return resolve_model_path("", model_root(config_from_dict(train_config, source=path)))


class ProgressWatch:
    """Runs a job command, following its progress lines (transforms/progress.py) and its memory; prints every 10 %."""

    def __init__(self, label: str, command: Sequence[str], rows: int, log_path: str, job: str = "",
                 progress_every: int = PROGRESS_EVERY, env: Optional[dict] = None):
        self.label, self.command, self.rows, self.log_path = label, list(command), rows, log_path
        self.progress_every = progress_every
        self.env = env or {}
        # Progress lines of other passes (preprocessing's vocabulary pass) are kept apart.
        self.job = job or label.split()[-1]
        self.latest: dict[str, dict[str, int]] = {}  # job -> worker tag -> rows
        self.marks: list[dict] = []

    def _read(self, stream, log) -> None:
        for line in stream:
            log.write(line)
            match = _PROGRESS.search(line)
            if match:
                self.latest.setdefault(match.group(1), {})[match.group(3)] = int(match.group(2))

    def rows_by_pid(self, job: str) -> dict[str, int]:
        """Rows each worker process handled in a pass, from the last progress line of each of its DoFns."""
        by_pid: dict[str, int] = {}
        for tag, rows in self.latest.get(job, {}).items():
            pid = tag.split("/")[0]
            by_pid[pid] = by_pid.get(pid, 0) + rows
        return by_pid

    def run(self) -> dict:
        """Runs the job to its end: seconds, rows/s, peak RSS of its process tree and the 10 % marks."""
        import psutil

        started = time.monotonic()
        with open(self.log_path, "w", encoding="utf-8") as log:
            job = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                        "SEQBEAM_PROGRESS_EVERY": str(self.progress_every), **self.env})
            reader = threading.Thread(target=self._read, args=(job.stdout, log), daemon=True)
            reader.start()
            process, peak, next_mark = psutil.Process(job.pid), 0, 1
            while job.poll() is None:
                rss = tree_rss(process)[0]
                peak = max(peak, rss)
                done = sum(self.latest.get(self.job, {}).values())
                while next_mark <= 10 and done >= self.rows * next_mark / 10:
                    self._mark(next_mark * 10, done, time.monotonic() - started, rss, peak)
                    next_mark += 1
                time.sleep(0.2)
            reader.join()
        seconds = time.monotonic() - started
        if job.returncode:
            raise RuntimeError(f"{self.label} failed (exit {job.returncode}): see {self.log_path}")
        if next_mark <= 10:  # the last rows went through after the last sample
            self._mark(100, self.rows, seconds, self.marks[-1]["rss"] if self.marks else peak, peak)
        return {"label": self.label, "rows": self.rows, "seconds": seconds, "rows_per_s": self.rows / seconds,
                "peak_rss": peak, "marks": self.marks}

    def _mark(self, percent: int, done: int, seconds: float, rss: int, peak: int) -> None:
        self.marks.append({"percent": percent, "rows": done, "seconds": seconds, "rss": rss, "peak": peak})
        print(f"  {self.label:<22} {percent:>3} %  {done:>11,} rows  {seconds:7.1f} s  {done / seconds:>9,.0f} rows/s"
              f"  RSS {rss / MIB:7,.0f} MiB  peak {peak / MIB:7,.0f} MiB", flush=True)


# --------------------------------------------------------------------------- corpora


def write_lines(path: str, lines: Iterable[str]) -> int:
    """Writes one line per item (``\\n`` line ends); returns how many."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
            count += 1
    return count


def synthetic_words(rng, size: int, syllables=WORD_SYLLABLES) -> list[str]:
    """``size`` distinct pronounceable words of 1-4 (onset, vowel, coda) syllables, shortest first."""
    onsets, vowels, codas = syllables
    words: set[str] = set()
    while len(words) < size:
        parts = [onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
                 + codas[rng.integers(len(codas))] for _ in range(int(rng.integers(1, 5)))]
        word = "".join(parts)
        if len(word) >= 2:
            words.add(word)
    return sorted(words, key=lambda w: (len(w), w))


def cached_files(directory: str, stamp: dict) -> Optional[list[str]]:
    """The files of a corpus written earlier into ``directory`` with the same ``stamp``, or None."""
    try:
        with open(os.path.join(directory, "STAMP.json"), encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    files = [os.path.join(directory, name) for name in saved.get("files", [])]
    return files if saved.get("stamp") == stamp and files and all(map(os.path.isfile, files)) else None


def stamp_files(directory: str, stamp: dict, files: Sequence[str]) -> None:
    """Marks ``files`` as the corpus of ``stamp`` (see :func:`cached_files`)."""
    with open(os.path.join(directory, "STAMP.json"), "w", encoding="utf-8") as f:
        json.dump({"stamp": stamp, "files": [os.path.basename(p) for p in files]}, f)


def write_words_corpus(directory: str, rows: int, seed: int) -> list[str]:
    """Writes (once) the words corpus as WORD_FILES ``sentence,label`` CSV files; returns their paths.

    Sentences of 5-20 words drawn from a Zipf-like vocabulary of 20k synthetic words, with
    commas and sentence ends; labels 0..4; deterministic from ``seed``.
    """
    import numpy as np

    stamp = {"corpus": "words", "rows": rows, "seed": seed, "files": WORD_FILES, "version": 1}
    cached = cached_files(directory, stamp)
    if cached:
        return cached
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    rng = np.random.default_rng(seed)
    vocabulary = synthetic_words(rng, WORD_VOCABULARY_SIZE)
    plain = np.array(vocabulary, dtype=object)
    with_comma = np.array([w + "," for w in vocabulary], dtype=object)
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** ZIPF_EXPONENT
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0
    lo, hi = WORDS_PER_SENTENCE
    lengths = rng.integers(lo, hi + 1, size=rows)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    ranks = np.searchsorted(cumulative, rng.random(int(ends[-1])), side="right")
    comma = rng.random(int(ends[-1])) < COMMA_RATE
    comma[ends - 1] = False  # the last word carries the sentence end instead
    tokens = np.where(comma, with_comma[ranks], plain[ranks]).tolist()
    closers = rng.integers(len(SENTENCE_ENDS), size=rows).tolist()
    labels = rng.integers(NUM_LABELS, size=rows).tolist()

    files = []
    bounds = [rows * i // WORD_FILES for i in range(WORD_FILES + 1)]
    for i in range(WORD_FILES):
        path = os.path.join(directory, f"words-{i:05d}-of-{WORD_FILES:05d}.csv")
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["sentence", "label"])
            for r in range(bounds[i], bounds[i + 1]):
                sentence = " ".join(tokens[starts[r]:ends[r]])
                writer.writerow([sentence[0].upper() + sentence[1:] + SENTENCE_ENDS[closers[r]], labels[r]])
        files.append(path)
    stamp_files(directory, stamp, files)
    return files


# --------------------------------------------------------------------------- a benchmark's run


def setup_logging(verbose: bool = False) -> None:
    """The jobs' WARNING lines (INFO with ``verbose``) on stderr; TensorFlow's C++ logs and Keras's UserWarnings off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO if verbose else logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")


@contextlib.contextmanager
def work_dir(path: Optional[str], prefix: str, keep: bool = False) -> Iterator[str]:
    """The benchmark's work folder: ``path`` (kept), or a temporary one deleted at the end unless ``keep``."""
    temporary = path is None
    directory = tempfile.mkdtemp(prefix=prefix) if temporary else os.path.abspath(path)
    os.makedirs(directory, exist_ok=True)
    try:
        yield directory
    finally:
        if temporary and not keep:
            shutil.rmtree(directory, ignore_errors=True)
