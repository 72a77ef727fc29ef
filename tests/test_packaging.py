"""What a user installs: one version everywhere, the licence and citation files it names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
