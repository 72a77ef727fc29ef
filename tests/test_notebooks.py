"""The notebooks run top to bottom on the offline default, at the tiny sizes of
``BERT_REPRO_NB_FAST=1``, and are committed without outputs.

Each notebook is executed with nbclient in a fresh IPython kernel started from this very Python
(``sys.executable``, not whatever ``python3`` kernel spec is installed on the machine), with
``notebooks/`` as the working directory and every file it writes under the test's temporary
folder. Per-cell times are printed (``pytest -s``).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import ipykernel  # noqa: F401  (the kernel the notebooks run in; a dev dependency, never skipped)
import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("reproduce_paper", "embeddings_tour")
CELL_TIMEOUT = 900  # seconds; a fast-mode cell takes well under a minute
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def this_python_kernel():
    """A KernelManager whose kernel is ``sys.executable -m ipykernel_launcher``."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name=f"Python ({sys.executable})",
                language="python",
                name=kernel_name,
            )

    return KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())


def read(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def cell_seconds(cell) -> float | None:
    """Wall time of an executed cell from nbclient's timing metadata."""
    from datetime import datetime

    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.status.busy"), timing.get("iopub.status.idle")
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean(name):
    nb = read(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.outputs == [], f"cell {cell.get('id')} has committed outputs"
        assert cell.execution_count is None, f"cell {cell.get('id')} has an execution count"
    source = "\n".join(c.source for c in code)
    assert "import bert_repro" in source or "from bert_repro" in source
    assert "768" not in source  # dims come from model.config
    assert not re.search(r"^\s*(def|class)\s", source, re.M)  # no logic of its own


@pytest.mark.slow  # about 30 s (embeddings_tour) and 2 min (reproduce_paper) on 2 busy cores
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("BERT_REPRO_NB_FAST", "1")
    monkeypatch.setenv("BERT_REPRO_NB_OUT", str(tmp_path / "out"))  # models/, runs/, cache
    monkeypatch.delenv("BERT_REPRO_DATA", raising=False)  # the notebook finds ../shared/data
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")

    nb = read(name)
    km = this_python_kernel()
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # the kernel's working directory
    )
    start = time.monotonic()
    try:
        client.execute()  # raises CellExecutionError with the cell and traceback on any error
    finally:
        # nbclient shuts down only kernels it made itself: without this, each notebook's
        # kernel (1-2 GB) stayed alive until pytest exited
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    total = time.monotonic() - start

    code = [c for c in nb.cells if c.cell_type == "code"]
    times = [cell_seconds(c) for c in code]
    print(f"\n{name}: {total:.1f} s in all (kernel start included)")
    for cell, seconds in zip(code, times, strict=True):
        first = cell.source.strip().splitlines()[0][:70] if cell.source.strip() else ""
        shown = "   ?" if seconds is None else f"{seconds:6.1f}"
        print(f"  {shown} s  {cell.get('id')}  {first}")

    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # Figures render offline: the plotly mimetype (JupyterLab, Notebook 7 and VS Code draw it
    # with the plotly.js bundled in their extension) and HTML for the classic notebook, with
    # plotly.js embedded once in the notebook rather than loaded from a CDN.
    figures = [o for o in outputs if PLOTLY_MIME in o.get("data", {})]
    assert len(figures) >= 3, "the notebook should show its plotly figures"
    html = " ".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "plotly.js v" in html, "plotly.js is not embedded in the notebook"
    assert not re.search(
        r"""(src=|import |paths: *{ *'plotly': *)["']https?://cdn\.plot\.ly""", html
    )
    # nothing was written into the repository: everything went under BERT_REPRO_NB_OUT
    if name == "reproduce_paper":
        out = tmp_path / "out"
        assert any((out / "models").glob("*/config.json")), "the fine-tuned model was not saved"
        assert list((out / "runs").rglob("results.json")), "the probe sweep wrote no results"
