"""What a user installs: one version everywhere, the licence and citation files it names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _project_field(name: str) -> str:
    """A ``[project]`` string field of pyproject.toml (tomllib is not in Python 3.10)."""
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(rf"^{name}\s*=\s*(.+)$", text, re.MULTILINE).group(1).strip()


def test_one_version_in_pyproject_the_package_the_cli_and_the_citation():
    import bert_repro

    version = _project_field("version").strip('"')
    assert bert_repro.__version__ == version
    out = subprocess.run(
        [sys.executable, "-m", "bert_repro.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == f"bert-repro {version}"
    assert f"version: {version}" in (ROOT / "CITATION.cff").read_text()
    assert f"## {version}" in (ROOT / "CHANGELOG.md").read_text()


def test_the_licence_file_is_the_one_pyproject_declares():
    licence = (ROOT / "LICENSE").read_text()
    assert "MIT" in _project_field("license") and licence.startswith("MIT License")


def _clean_copy(dest: Path) -> Path:
    """The repository's own files, as a fresh clone has them (no .venv, runs, caches, builds)."""
    import shutil

    skip = shutil.ignore_patterns(
        ".git", ".venv", "runs", "models", "build", "dist", "*.egg-info", "__pycache__", ".*cache"
    )
    return Path(shutil.copytree(ROOT, dest, ignore=skip))


def test_setup_py_is_a_shim_and_pyproject_holds_the_metadata():
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [ast.unparse(c) for c in calls] == ["setup()"]  # no metadata of its own


def test_pip_install_from_a_clean_copy(tmp_path):
    """``pip install .`` builds from pyproject.toml (through the setup.py shim) and installs
    every module of the package, the console script and the version; offline: no index, no
    dependencies (they are this environment's), the build backend from this environment."""
    pytest.importorskip("setuptools", reason="--no-build-isolation needs setuptools here")
    source = _clean_copy(tmp_path / "clone")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
        + ["--no-build-isolation", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=tmp_path,
    )
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bert_repro").rglob("*.py")}
    installed = {p.relative_to(target).as_posix() for p in (target / "bert_repro").rglob("*.py")}
    assert installed == modules
    assert not (target / "tests").exists()
    version = _project_field("version").strip('"')
    (dist_info,) = target.glob("bert_repro-*.dist-info")
    assert dist_info.name == f"bert_repro-{version}.dist-info"
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "bert-repro = bert_repro.cli:main" in entry_points
    out = subprocess.run(
        [sys.executable, "-c", "import bert_repro, sys; print(bert_repro.__file__)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert Path(out.stdout.strip()).is_relative_to(target)
