"""What a user installs: one version everywhere, the licence and citation files it names."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_version_in_pyproject_the_package_the_cli_and_the_citation():
    import bert_repro

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
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
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    licence = (ROOT / "LICENSE").read_text()
    assert "MIT" in str(meta.get("license")) and licence.startswith("MIT License")
