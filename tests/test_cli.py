"""The ``seqbeam`` command as a user runs it: quiet by default, every log line with ``-v``."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TensorFlow's C++ start-up lines: "I0000 00:00:... port.cc:153] oneDNN custom operations are on."
TF_STARTUP = ("oneDNN custom operations", "absl::InitializeLog", "cudart_stub.cc")
BEAM_INFO = " INFO apache_beam."


def seqbeam(*args: str, cwd) -> subprocess.CompletedProcess:
    """Runs the console entry point in a fresh process, as a scheduled job would."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["SEQBEAM_PROGRESS_EVERY"] = "10"
    command = [sys.executable, "-m", "seqbeam.pipelines.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def preprocess_args(tmp_path) -> list[str]:
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("".join(f"sentence number {i},{i % 2}\n" for i in range(40)), encoding="utf-8")
    return ["preprocess", "--config", os.path.join(REPO, "configs", "emoji.yaml"),
            "--set", f"output_dir={tmp_path / 'out'}", "--set", f"data.path={corpus}",
            "--set", "data.header=false", "--set", "data.text_column=0", "--set", "data.label_column=1"]


def test_a_job_prints_its_own_lines_and_no_library_chatter(tmp_path):
    quiet = seqbeam(*preprocess_args(tmp_path), cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    output = quiet.stdout + quiet.stderr
    assert "seqbeam.pipelines.preprocess: preprocess emoji done" in output
    assert "seqbeam.transforms.progress: progress preprocess: " in output  # the progress lines stay
    assert not [line for line in TF_STARTUP if line in output], output[:2000]
    assert BEAM_INFO not in output


def test_worker_processes_relay_their_progress_lines_and_nothing_else(tmp_path):
    run = seqbeam(*preprocess_args(tmp_path), "--direct_running_mode=multi_processing", "--direct_num_workers=2",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    relayed = [line for line in run.stderr.splitlines() if "local_job_service" in line]
    assert any('message: "progress preprocess: ' in line for line in relayed), relayed[:5]
    assert all('message: "progress ' in line for line in relayed), relayed[:5]

    verbose = seqbeam(*preprocess_args(tmp_path), "-v", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert BEAM_INFO in verbose.stderr and "oneDNN custom operations" in verbose.stderr
    assert "seqbeam.pipelines.preprocess: preprocess emoji done" in verbose.stderr


def test_a_bad_key_fails_at_once_naming_it(tmp_path):
    failed = seqbeam(*preprocess_args(tmp_path), "--set", "preprocess.max_lenght=3", cwd=tmp_path)
    assert failed.returncode == 2
    assert "preprocess.max_lenght" in failed.stderr
