"""The deployment files: specs parse, the Flex Template's parameters are the launcher's, and
the launcher runs a job locally (the path it takes off Dataflow)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(REPO, "deploy")


def load_launcher():
    spec = importlib.util.spec_from_file_location("launch", os.path.join(DEPLOY, "flex-template", "launch.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_specs_parse():
    for name in ("vertex-train.yaml", "k8s-train.yaml", "cloudbuild.yaml"):
        with open(os.path.join(DEPLOY, name), encoding="utf-8") as f:
            assert [doc for doc in yaml.safe_load_all(f) if doc], name
    subprocess.run(["bash", "-n", os.path.join(DEPLOY, "schedule.sh")], check=True)


def test_flex_template_parameters_are_the_launcher_flags(tmp_path):
    with open(os.path.join(DEPLOY, "flex-template", "metadata.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert [p["name"] for p in metadata["parameters"]] == ["config", "stage", "overrides"]
    # Off Dataflow the launcher runs the job itself, with its checks.
    output_dir = tmp_path / "out"
    load_launcher().main(["--config", os.path.join(REPO, "configs", "reber.yaml"), "--stage", "preprocess",
                          "--overrides", f"output_dir={output_dir};data.generator.num_rows=300;preprocess.num_shards=1"])
    with open(output_dir / "reber" / "data" / "metadata.json", encoding="utf-8") as f:
        assert json.load(f)["rows"]["in"] == 300
