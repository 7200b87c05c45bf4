"""The house's floors: which package may import which (README "Layout", DESIGN.md "Layers")."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Folder of each package, by its name under seqbeam.
PACKAGES = {"configs": "configs", "text": "text", "storage": "seqbeam", "transforms": "transforms",
            "models": "models", "pipelines": "pipelines"}
# What each floor may import of seqbeam, besides itself.
ALLOWED = {
    "configs": set(),
    "text": set(),
    "storage": set(),
    "transforms": {"configs", "text", "storage"},
    "models": {"configs", "text", "storage"},
    "pipelines": {"configs", "text", "storage", "transforms", "models"},
}
JOBS = {"preprocess", "train", "infer", "evaluate", "generate"}


def modules() -> dict[str, str]:
    """``package.module`` -> file, for every module of the package folders."""
    found = {}
    for package, folder in PACKAGES.items():
        for name in sorted(os.listdir(os.path.join(REPO, folder))):
            if name.endswith(".py") and name != "__init__.py":
                stem = name[:-3]
                if package == "storage" and stem != "storage":
                    continue
                found[package if package == "storage" else f"{package}.{stem}"] = os.path.join(REPO, folder, name)
    return found


def seqbeam_imports(path: str) -> set[str]:
    """The seqbeam modules a file imports (at any depth: function-level imports count too)."""
    imported = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seqbeam."):
            parts = node.module.split(".")[1:]
            if len(parts) == 1:  # from seqbeam.pipelines import layout
                imported |= {parts[0] if parts[0] == "storage" else f"{parts[0]}.{a.name}" for a in node.names}
            else:
                imported.add(".".join(parts[:2]))
        elif isinstance(node, ast.Import):
            imported |= {".".join(a.name.split(".")[1:3]) for a in node.names if a.name.startswith("seqbeam.")}
    return imported


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_imports_only_the_floors_below_it(module):
    package = module.split(".")[0]
    imported = seqbeam_imports(modules()[module])
    outside = {name for name in imported if name.split(".")[0] not in ALLOWED[package] | {package}}
    assert not outside, f"{module} imports {sorted(outside)}"


@pytest.mark.parametrize("job", sorted(JOBS))
def test_no_job_imports_another_job(job):
    imported = seqbeam_imports(modules()[f"pipelines.{job}"])
    assert not {f"pipelines.{other}" for other in JOBS - {job}} & imported


def test_every_module_is_checked():
    assert {"configs.schema", "text.tokenizer", "text.vocabulary", "text.encoding", "storage",
            "pipelines.layout", "transforms.rows", "models.export"} <= set(modules())
    assert seqbeam_imports(modules()["pipelines.infer"]) >= {"pipelines.layout", "transforms.rows"}


def test_building_a_keras_model_imports_no_beam():
    code = ("import sys\n"
            "import seqbeam.models.tasks, seqbeam.models.decoding, seqbeam.text.encoding\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('apache_beam')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
