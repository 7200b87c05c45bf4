"""Faults injected into the jobs: failing rows are retried or rejected, never lost; a killed job rerun
leaves exactly one set of outputs. (A killed training run resuming to the same step count is in
tests/test_train.py and tests/test_multiworker.py.)"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import apache_beam as beam
import pyarrow.parquet as pq
import pytest

from seqbeam.pipelines import infer, layout, preprocess, run, serving
from seqbeam.configs.schema import config_from_dict, load_config
from seqbeam.transforms.encode import EncodeBatches
from seqbeam.transforms.postprocess import PostprocessBatches, result_inputs
from seqbeam.transforms.records import rows_of

from conftest import EMOJI_CLASSES, emoji_corpus, line_id, read_rejected

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def share(row_id: str, salt: str) -> float:
    """A stable number in [0, 1) per row id: which rows a fault hits."""
    return int(hashlib.sha256(f"{salt}:{row_id}".encode()).hexdigest()[:8], 16) / 16**8


class Faults:
    """Which rows fail: ``poison`` ones every time, ``flaky`` ones on their first attempt only.

    Attempts are remembered as files in ``folder``, so the memory survives pickling the
    DoFn and holds across processes.
    """

    def __init__(self, folder, poison: float, flaky: float):
        self.folder, self.poison, self.flaky = str(folder), poison, flaky

    def check(self, row_ids):
        """Raises for an element holding a flaky row not tried before, or a poison row."""
        first_tries = [os.path.join(self.folder, hashlib.sha256(row_id.encode()).hexdigest())
                       for row_id in row_ids if share(row_id, "flaky") < self.flaky]
        first_tries = [marker for marker in first_tries if not os.path.exists(marker)]
        for marker in first_tries:
            open(marker, "w").close()
        if first_tries:
            raise ConnectionError(f"injected transient fault ({len(first_tries)} rows on their first try)")
        for row_id in row_ids:
            if share(row_id, "poison") < self.poison:
                raise ValueError(f"injected fault: poison row {row_id}")


def faulty(cls, faults: Faults, ids_of):
    """A subclass of the DoFn ``cls`` that runs ``faults`` on the ids of each element first."""

    class Faulty(cls):
        def process(self, element, *args, **kwargs):
            faults.check(ids_of(element))
            yield from super().process(element, *args, **kwargs)

    return Faulty


def test_encoding_faults_are_retried_row_by_row_and_poison_rows_rejected(tmp_path, monkeypatch):
    faults = Faults(tmp_path / "attempts", poison=0.03, flaky=0.1)
    os.makedirs(faults.folder)
    monkeypatch.setattr(preprocess, "EncodeBatches", faulty(EncodeBatches, faults, lambda batch: batch.ids))
    config = config_from_dict({
        "task": {"name": "emoji", "kind": "classifier", "classes": EMOJI_CLASSES},
        "data": {"format": "csv", "path": emoji_corpus(tmp_path / "corpus.csv", rows=2000),
                 "text_column": "sentence", "label_column": "label"},
        # 3 % poison rows: over the default 1 % failure threshold, under this one.
        "preprocess": {"max_length": 8, "num_shards": 1, "batch_size": 64, "max_failure_rate": 0.05},
        "output_dir": str(tmp_path / "out"),
    })
    metadata = preprocess.run_config(config, save_main_session=False)  # fails if the accounting does not hold
    rows = metadata["rows"]
    ids = [line_id(config.data.path, line) for line in range(2, 2002)]
    poison = {i for i in ids if share(i, "poison") < faults.poison}
    flaky = {i for i in ids if share(i, "flaky") < faults.flaky} - poison
    assert 30 < len(poison) < 100 and len(flaky) > 100
    assert rows["in"] == 2000 and rows["rejected"] == len(poison)
    assert rows["train"] + rows["valid"] + rows["test"] == 2000 - len(poison)
    rejected = read_rejected(os.path.join(tmp_path, "out", "emoji", "data", "rejected"))
    assert {r["id"] for r in rejected} == poison
    assert {(r["stage"], r["code"]) for r in rejected} == {("encode", "processing_error")}
    assert all("injected fault: poison row" in r["reason"] for r in rejected)
    assert len(os.listdir(faults.folder)) >= len(flaky)  # every flaky row failed once, then went through


@pytest.fixture(scope="module")
def emoji_model(shared_emoji):
    """The session's emoji classifier (conftest.SHARED_EMOJI_TRAIN); the tests write under their tmp_path."""
    return shared_emoji.config, shared_emoji.folder


def test_postprocessing_faults_are_retried_row_by_row_and_poison_rows_rejected(emoji_model, tmp_path, monkeypatch):
    config, folder = emoji_model
    faults = Faults(tmp_path / "attempts", poison=0.02, flaky=0.1)
    os.makedirs(faults.folder)
    monkeypatch.setattr(infer, "PostprocessBatches",
                        faulty(PostprocessBatches, faults, lambda results: [key for key, _ in result_inputs(results)]))
    corpus = emoji_corpus(tmp_path / "annotate.csv", rows=3000, seed=5)
    data = dataclasses.replace(config.data, path=corpus, label_column=None)
    # 2 % poison rows: over the default 1 % failure threshold, under this one.
    config = dataclasses.replace(config, output_dir=str(tmp_path / "out"), infer=dataclasses.replace(
        config.infer, input=data, model_path=serving.plan_serving(config).model_path, max_batch_size=64,
        max_failure_rate=0.05))
    summary = infer.run_config(config, save_main_session=False)  # fails if in != out + rejected
    ids = {line_id(corpus, line) for line in range(2, 3002)}
    poison = {i for i in ids if share(i, "poison") < faults.poison}
    assert 30 < len(poison) < 100
    assert summary["rows"]["in"] == 3000 and summary["rows"]["rejected"] == len(poison)
    predicted = pq.read_table(summary["predictions"]).column("id").to_pylist()
    rejected = pq.read_table(summary["rejected"]).to_pylist()
    assert sorted(predicted) == sorted(ids - poison) and {r["id"] for r in rejected} == poison
    assert {(r["stage"], r["code"]) for r in rejected} == {("postprocess", "processing_error")}


def files_under(folder) -> list[str]:
    """Every file below ``folder`` (hidden ones too), relative to it."""
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


@pytest.mark.slow
def test_a_killed_run_rerun_leaves_one_set_of_outputs(tmp_path):
    """`seqbeam run` killed while inference writes its Parquet, then run again."""
    overrides = [f"output_dir={tmp_path}", "train.epochs=2", "data.generator.num_rows=2000",
                 "infer.input.generator.num_rows=300"]
    config_path = os.path.join(REPO, "configs", "reber.yaml")
    run.run_config(load_config(config_path, overrides), report=False)
    bigger = overrides[:-1] + ["infer.input.generator.num_rows=200000", "infer.num_shards=4"]
    task_dir = tmp_path / "reber"
    command = [sys.executable, "-m", "seqbeam.pipelines.cli", "run", "--config", config_path]
    for override in bigger:
        command += ["--set", override]
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        # Killed once this run's inference has written part of its output (Beam's temporary files).
        while not any("temp" in path for path in files_under(task_dir / "predictions")):
            assert job.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(job.pid, signal.SIGKILL)
    finally:
        job.wait()
    assert not (task_dir / "_markers" / "infer.json").exists()

    summary = run.run_config(load_config(config_path, bigger), report=False)
    assert {o["stage"]: o["status"] for o in summary["stages"]} == {
        "preprocess": "skipped", "train": "skipped", "infer": "ran", "evaluate": "ran"}
    assert files_under(task_dir / "predictions") == [f"predictions-0000{i}-of-00004.parquet" for i in range(4)]
    ids = pq.read_table(str(task_dir / "predictions")).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 200000
    assert json.load(open(task_dir / "infer_summary.json"))["rows"]["out"] == 200000


# ------------------------------------------------------------------------------ retried bundles, failure rates


def fails_once_after_its_outputs(cls, marker: str, sentinel: str):
    """A subclass of the DoFn ``cls`` whose first call on a batch holding the text ``sentinel``
    emits every output, then raises, as a worker lost after writing does; ``marker`` (a file,
    so it holds across processes) records that the fault fired. A batch is a list of Rows or,
    from the CSV readers' Arrow path, a table (``rows_of`` reads both)."""

    class FailsOnce(cls):
        def process(self, rows, *args, **kwargs):
            yield from super().process(rows, *args, **kwargs)
            if any(row.text == sentinel for row in rows_of(rows)) and not os.path.exists(marker):
                open(marker, "w").close()
                raise ConnectionError("injected: bundle lost after its outputs were emitted")

    return FailsOnce


def summary_counts(summary: dict) -> dict:
    """What must be identical across runners: the rows, the rejections and the failures."""
    return {key: summary[key] for key in ("rows", "rejections", "failures", "files")}


def test_a_retried_bundle_leaves_the_summary_exact(emoji_model, tmp_path, monkeypatch):
    """Beam's BundleBasedDirectRunner retries a failed bundle; its counters count both attempts."""
    from apache_beam.metrics.metric import MetricsFilter

    from seqbeam.pipelines.options import pipeline_options

    config, _ = emoji_model
    sentinel = "the sentinel row we eat"
    corpus = emoji_corpus(tmp_path / "annotate.csv", rows=300, seed=7)
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("".join(f"{'food ' * 50}{i},0\n" for i in range(7)) + f"{sentinel},4\n")
    data = dataclasses.replace(config.data, path=corpus, label_column=None)
    config = dataclasses.replace(config, output_dir=str(tmp_path / "out"), infer=dataclasses.replace(
        config.infer, input=data, model_path=serving.plan_serving(config).model_path, max_chars=200, num_shards=2),
        preprocess=dataclasses.replace(config.preprocess, batch_size=64))
    plan = serving.plan_serving(config)
    expected = infer.run_config(config, save_main_session=False)  # the in-process runner, no fault

    marker = str(tmp_path / "fault-fired")
    monkeypatch.setattr(infer, "KeyExamples", fails_once_after_its_outputs(infer.KeyExamples, marker, sentinel))
    pipeline = beam.Pipeline(options=pipeline_options(["--runner=BundleBasedDirectRunner"], save_main_session=False))
    infer.build_pipeline(pipeline, config, plan)
    infer.clear_outputs(config)
    result = pipeline.run()
    result.wait_until_finish()

    assert os.path.exists(marker)  # the fault fired: one bundle ran twice
    summary = json.load(open(layout.infer_summary_path(config), encoding="utf-8"))
    assert summary_counts(summary) == summary_counts(expected)
    assert summary["rows"] == {**summary["rows"], "in": 308, "out": 301, "rejected": 7}
    assert summary["rejections"]["by_reason"] == {"validate/too_many_chars": 7}
    ids = pq.read_table(summary["predictions"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 301
    # The counters saw the lost attempt too: a summary read from them would be wrong.
    counters = result.metrics().query(MetricsFilter().with_namespace("infer").with_name("rows_in"))["counters"]
    assert sum(c.committed for c in counters) > 308


def broken(cls):
    """A subclass of the DoFn ``cls`` that raises on every call: a broken step, not bad input."""

    class Broken(cls):
        def process(self, element, *args, **kwargs):
            raise RuntimeError("injected: the step is broken")

    return Broken


def test_a_preprocessing_job_whose_rows_all_fail_fails_naming_its_first_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "EncodeBatches", broken(EncodeBatches))
    config = config_from_dict({
        "task": {"name": "emoji", "kind": "classifier", "classes": EMOJI_CLASSES},
        "data": {"format": "csv", "path": emoji_corpus(tmp_path / "corpus.csv", rows=200),
                 "text_column": "sentence", "label_column": "label"},
        "preprocess": {"max_length": 8, "num_shards": 1, "batch_size": 64},
        "output_dir": str(tmp_path / "out"),
    })
    with pytest.raises(Exception, match=r"200 of 200 rows \(100.0%\) failed, over preprocess.max_failure_rate 0.01; "
                                        r"first errors: .* \(encode\) processing_error: RuntimeError: injected: the step is broken"
                       ) as failure:
        preprocess.run_config(config, save_main_session=False)
    data_dir = layout.data_dir(config)
    assert not os.path.exists(os.path.join(data_dir, "metadata.json"))  # no mark of a good run
    rejected = read_rejected(os.path.join(data_dir, "rejected"))
    assert len(rejected) == 200 and {r["code"] for r in rejected} == {"processing_error"}
    # The first errors named are those of the smallest row ids, and only those.
    ids = sorted(r["id"] for r in rejected)
    message = str(failure.value)
    assert all(f"{row_id} (encode) processing_error" in message for row_id in ids[:5])
    assert not any(f"{row_id} (encode) processing_error" in message for row_id in ids[5:])
