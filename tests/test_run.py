"""`seqbeam run` end to end on CI-sized versions of the shipped task configs."""

from __future__ import annotations

import base64
import glob
import json
import os
import re

import pyarrow.parquet as pq
import pytest

from seqbeam.pipelines import run
from seqbeam.pipelines.cli import main
from seqbeam.configs.schema import load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small enough for CI, the rest as shipped.
SMALL = {
    # The first 20,000 GloVe rows (the commonest words) make a 4 MB model instead of 80 MB.
    "emoji": ["train.epochs=8", "preprocess.source_vocab.vectors_rows=20000", f"data.path={REPO}/data/emoji_sentences.csv",
              f"infer.input.path={REPO}/data/emoji_sentences.csv"],
    "translate": ["train.epochs=2", "train.model.units=64", f"data.path={REPO}/data/en_es_pairs.tsv",
                  f"infer.input.path={REPO}/data/en_es_pairs.tsv"],
    "dates": ["train.epochs=2", "data.generator.num_rows=3000", "infer.input.generator.num_rows=400"],
    "names": ["train.epochs=3", f"data.path={REPO}/data/dino_names.txt", "infer.num_samples=200"],
    "reber": ["train.epochs=2", "data.generator.num_rows=4000", "infer.input.generator.num_rows=400"],
}
PNG = b"\x89PNG\r\n\x1a\n"


def small_config(task: str, output_dir, *more: str):
    return load_config(os.path.join(REPO, "configs", f"{task}.yaml"),
                       [f"output_dir={output_dir}", *SMALL[task], *more])


def cli_args(task: str, output_dir, *more: str) -> list[str]:
    args = ["run", "--config", os.path.join(REPO, "configs", f"{task}.yaml"), "--set", f"output_dir={output_dir}"]
    for override in SMALL[task]:
        args += ["--set", override]
    return args + list(more)


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory):
    """Runs each task once (on first use) and keeps its summary."""
    root = tmp_path_factory.mktemp("runs")
    done = {}

    def get(task: str) -> dict:
        if task not in done:
            done[task] = run.run_config(small_config(task, root))
        return done[task]

    return get


def statuses(summary: dict) -> dict:
    return {outcome["stage"]: outcome["status"] for outcome in summary["stages"]}


def predictions(summary: dict):
    return pq.ParquetDataset(os.path.join(summary["task_dir"], "predictions")).read()


def metrics(summary: dict) -> dict:
    return json.load(open(os.path.join(summary["task_dir"], "eval", "metrics.json"), encoding="utf-8"))


def report_images(summary: dict) -> list[bytes]:
    html = open(summary["report"], encoding="utf-8").read()
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


@pytest.mark.slow
def test_emoji_run_from_the_command_line_prints_where_everything_is(tmp_path, capsys):
    assert main(cli_args("emoji", tmp_path)) == 0
    printed = capsys.readouterr().out
    task_dir = str(tmp_path / "emoji")
    for stage in ("preprocess", "train", "infer", "evaluate"):
        assert re.search(rf"^{stage}\s+ran\s", printed, re.M)
    for output in ("data/metadata.json", "predictions", "eval/metrics.json", "report.html"):
        assert os.path.join(task_dir, output) in printed
    summary = json.load(open(os.path.join(task_dir, "run_summary.json"), encoding="utf-8"))
    assert predictions(summary).num_rows == 350
    scores = metrics(summary)
    assert scores["rows"] == {"predictions": 350, "with_reference": 350, "without_reference": 0,
                              "reference_not_predicted": 0}
    test, every = scores["splits"]["test"], scores["splits"]["all"]
    assert 0 < test["rows"] < every["rows"] == 350
    assert sum(map(sum, every["confusion_matrix"])) == 350
    # 8 epochs of the mean-of-embeddings model already learn the shipped sentences.
    assert 0.4 < every["accuracy"] <= 1 and 0 <= test["accuracy"] <= 1
    assert [c["class"] for c in every["per_class"]] == ["❤️", "⚾", "😄", "😞", "🍴"]
    images = report_images(summary)
    assert len(images) >= 2 and all(image.startswith(PNG) for image in images)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["translate", "dates", "names", "reber"])
def test_each_task_runs_end_to_end_with_sane_metrics_and_a_report(task_runs, task):
    summary = task_runs(task)
    assert statuses(summary) == dict.fromkeys(("preprocess", "train", "infer", "evaluate"), "ran")
    table = predictions(summary)
    scores = metrics(summary)
    every = scores["splits"]["all"]
    if task == "translate":
        assert table.num_rows == 350 and "test" in scores["splits"]
        assert 0 <= every["bleu"] <= 100 and 0 <= every["chrf"] <= 100
        assert every["bleu_signature"].startswith("nrefs:1|")
        attention = json.load(open(os.path.join(summary["task_dir"], "eval", "attention.json"), encoding="utf-8"))
        for item in attention["items"]:
            assert len(item["weights"]) == len(item["target_tokens"])
            assert all(len(row) == len(item["source_tokens"]) for row in item["weights"])
    elif task == "dates":
        assert table.num_rows == 400 and list(scores["splits"]) == ["all"]  # unseen generated dates
        assert every["clean"]["rows"] + every["noisy"]["rows"] == every["rows"] == 400
        assert sum(f["clean_rows"] + f["noisy_rows"] for f in every["per_format"]) == 400
        assert len(every["per_format"]) > 10
        assert 0 <= every["exact_match"] <= 1 and 0 <= every["valid_rate"] <= 1
    elif task == "names":
        kept = table.num_rows
        assert every["rows"] == kept and 150 < kept <= 200
        assert 0 <= every["novel"] <= 1 and 0 < every["unique"] <= 1
        assert sum(every["length"]["histogram"].values()) == kept
        assert every["training_length"]["mean"] > 5
    else:
        assert table.num_rows == 400 and every["rows"] == 400
        assert sum(map(sum, every["confusion_matrix"])) == 400
    assert all(image.startswith(PNG) for image in report_images(summary))
    assert len(report_images(summary)) >= (2 if task in ("translate", "dates") else 1)


def model_versions(summary: dict) -> list[str]:
    return sorted(os.listdir(os.path.join(summary["task_dir"], "model")))


@pytest.mark.slow
def test_a_second_run_skips_every_stage_and_force_redoes_them(task_runs):
    first = task_runs("reber")
    config = small_config("reber", os.path.dirname(first["task_dir"]))
    outputs = glob.glob(os.path.join(first["task_dir"], "predictions", "*.parquet")) + [
        os.path.join(first["task_dir"], name) for name in ("data/metadata.json", "eval/metrics.json")]
    stamps = {path: os.stat(path).st_mtime_ns for path in outputs}
    again = run.run_config(config)
    assert statuses(again) == dict.fromkeys(("preprocess", "train", "infer", "evaluate"), "skipped")
    assert model_versions(again) == model_versions(first)
    assert {path: os.stat(path).st_mtime_ns for path in outputs} == stamps
    assert [o["summary"] for o in again["stages"]] == [o["summary"] for o in first["stages"]]

    versions = model_versions(first)
    forced = run.run_config(config, force=True)
    assert statuses(forced) == dict.fromkeys(("preprocess", "train", "infer", "evaluate"), "ran")
    assert len(model_versions(forced)) == len(versions) + 1
    infer_outcome = next(o for o in forced["stages"] if o["stage"] == "infer")
    assert infer_outcome["outputs"]["model"].endswith(model_versions(forced)[-1])


@pytest.mark.slow
def test_changing_an_inference_key_redoes_only_inference_and_evaluation(task_runs):
    first = task_runs("reber")
    output_dir = os.path.dirname(first["task_dir"])
    changed = run.run_config(small_config("reber", output_dir, "infer.min_confidence=0.9"))
    assert statuses(changed) == {"preprocess": "skipped", "train": "skipped", "infer": "ran", "evaluate": "ran"}
    # Outputs deleted by hand make their stage (and the ones after it) run again.
    os.remove(os.path.join(first["task_dir"], "infer_summary.json"))
    again = run.run_config(small_config("reber", output_dir, "infer.min_confidence=0.9"))
    assert statuses(again) == {"preprocess": "skipped", "train": "skipped", "infer": "ran", "evaluate": "ran"}


@pytest.mark.slow
def test_selected_stages_run_alone(task_runs):
    first = task_runs("names")
    config = small_config("names", os.path.dirname(first["task_dir"]), "infer.num_samples=50")
    summary = run.run_config(config, stages=run.parse_stages("evaluate,infer"), report=False)
    assert [o["stage"] for o in summary["stages"]] == ["infer", "evaluate"]
    assert statuses(summary) == {"infer": "ran", "evaluate": "ran"}
    assert metrics(summary)["splits"]["all"]["rows"] <= 50


def test_a_bad_config_key_fails_before_any_work(tmp_path, capsys):
    assert main(cli_args("emoji", tmp_path, "--set", "train.epochz=3")) == 2
    assert "train.epochz" in capsys.readouterr().err
    assert main(cli_args("emoji", tmp_path, "--stages", "preprocess,traine")) == 2
    assert "traine" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "emoji")
