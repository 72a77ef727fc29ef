"""Small, safe file output: atomic writes, JSON with NumPy values, figures, run metadata, and
fingerprints of input files and folders (what decides whether earlier work can be reused)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

#: Bytes read at a time when hashing a file: memory stays at one chunk whatever the file size.
HASH_CHUNK = 4 << 20


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _to_jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # JSON has no NaN/inf; a missing value is explicit
    if isinstance(obj, Path):
        return str(obj)
    return obj


def check_out_dir(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """Refuse an output folder that cannot be created or written, before any work is done.

    Nothing is created; the folder is made when the first result is written.

    Args:
        path: the folder.
        what: how the messages name it (e.g. ``"feature cache folder"``).

    Raises:
        ConfigError: ``path`` or one of its parents is an existing file, or the nearest
            existing folder is not writable.
    """
    from .errors import ConfigError

    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"{what} {path} cannot be used: {p} is a file")
            if not os.access(p, os.W_OK | os.X_OK):
                raise ConfigError(f"{what} {path} cannot be written: {p} is read-only")
            break
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically; NumPy values become plain ones, NaN -> null."""
    text = json.dumps(_to_jsonable(obj), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def browser_engine() -> str | None:
    """Path of a Chrome/Chromium that kaleido can drive for PNG export, or None."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return None
    for env in ("BROWSER_PATH",):
        if os.environ.get(env) and Path(os.environ[env]).exists():
            return os.environ[env]
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def plotly_js(folder: str | os.PathLike) -> Path:
    """``<folder>/plotly-<version>.min.js``, written once per folder and shared by the HTML
    figures saved there (offline, and one 4.8 MB copy instead of one per figure)."""
    import plotly
    from plotly.offline import get_plotlyjs

    path = Path(folder) / f"plotly-{plotly.__version__}.min.js"
    if not path.exists():
        atomic_write_text(path, get_plotlyjs())
    return path


def save_figure(fig, path: str | os.PathLike, *, png: bool | None = None) -> list[Path]:
    """Save a plotly figure as ``path.html`` (always) and ``path.png``.

    The HTML loads plotly.js from the file :func:`plotly_js` writes beside it (the first figure
    of a folder writes it), so a folder of figures opens offline and weighs kilobytes a figure.

    Args:
        fig: a ``plotly.graph_objects.Figure``.
        path: destination without suffix (a suffix given is replaced).
        png: write PNG too; ``None`` means when a browser engine is available.

    Returns:
        The files written.
    """
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".html", ".png") else path
    base.parent.mkdir(parents=True, exist_ok=True)
    js = plotly_js(base.parent)
    written = [atomic_write_text(base.with_suffix(".html"), fig.to_html(include_plotlyjs=js.name))]
    if png is None:
        png = browser_engine() is not None
    if png:
        try:
            data = fig.to_image(format="png", width=900, height=500, scale=2)
        except Exception as err:  # no engine after all: HTML stands, say why PNG did not
            print(f"note: PNG not written for {base.name} ({type(err).__name__}: {err})")
        else:
            written.append(atomic_write_bytes(base.with_suffix(".png"), data))
    return written


def package_versions() -> dict[str, str]:
    """Versions of the packages that change results."""
    names = [
        "bert_repro",
        "tensorflow",
        "tf_keras",
        "transformers",
        "tokenizers",
        "numpy",
        "scipy",
        "tensorflow_datasets",
        "conllu",
    ]
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in names:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    return out


def run_metadata(**settings: Any) -> dict[str, Any]:
    """Settings, versions and time of a run (a model folder's ``finetune.json``; results use
    :func:`bert_repro.outputs.results_meta`)."""
    return {
        "settings": _to_jsonable(settings),
        "versions": package_versions(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def file_fingerprint(path: str | os.PathLike, *, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (SHA-256 by default), read in :data:`HASH_CHUNK` chunks.

    The content, not the path or the time: two copies of a file agree, and any edit of a
    file, even one that keeps its size and time, gives another fingerprint.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it is missing).
    """
    h = hashlib.new(algorithm)
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def folder_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 over each file's relative path, size and ``mtime_ns`` below ``path``.

    A cheap stand-in for hashing the content of model folders: their weight files run to
    gigabytes (bert-base 440 MB, reading it costs about a second here, a GPU job's checkpoints
    far more), while a ``stat`` of each file costs microseconds. Writing a file changes its
    ``mtime``, so a re-saved, replaced or edited model always gives a new fingerprint; a mere
    copy (``cp`` without ``-p``) or ``touch`` also does, which only costs a recomputation.
    What it misses is a rewrite that restores size and time on purpose. Files and folders
    whose names start with ``.`` (editor and temporary files) are left out; symbolic links
    are followed (the Hugging Face hub cache links to its blobs).

    Raises:
        NotADirectoryError, FileNotFoundError: ``path`` is not a folder.
    """
    root = Path(path)
    if not root.is_dir():
        raise (NotADirectoryError if root.exists() else FileNotFoundError)(
            f"{root} is not a folder"
        )
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            st = full.stat()
            rel = full.relative_to(root).as_posix()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def frame_rows(frame) -> list[dict]:
    """A pandas DataFrame as row dicts; a meaningful index (a name, ``describe()``'s
    statistics) becomes the first column, a plain ``0..n-1`` one is left out."""
    if not _plain(frame):
        frame = frame.reset_index(names=frame.index.name or "index")
    return frame.to_dict(orient="records")


def save_result(
    out_dir: str | os.PathLike,
    *,
    command: str,
    settings: dict,
    result: dict,
    tables: dict[str, Any],
    figures: dict[str, Any] | None = None,
    models: dict[str, dict] | None = None,
    png: bool | None = None,
) -> list[Path]:
    """Write a study's results into ``out_dir`` in the package's one schema
    (:mod:`bert_repro.outputs`).

    The first of ``tables`` (pandas DataFrames) becomes the rows of ``results.json`` and
    ``results.csv``; ``result`` (plain data: what does not fit in rows) the section
    ``summary`` of ``results.json``; each further table ``<name>.csv``; each ``figures[name]``
    ``figures/<name>.html`` (and ``.png`` as :func:`save_figure` decides). All are written
    atomically.

    Returns:
        The files written (``results.json`` first).
    """
    from .outputs import FIGURES, write_results

    out = Path(out_dir)
    frames = list(tables.items())
    rows = frame_rows(frames[0][1]) if frames else []
    written = write_results(
        out,
        rows,
        command=command,
        settings=settings,
        models=models,
        columns=None if not frames else _frame_columns(frames[0][1]),
        extra={"summary": result},
    )
    for name, frame in frames[1:]:
        written.append(
            atomic_write_text(out / f"{name}.csv", frame.to_csv(index=not _plain(frame)))
        )
    for name, fig in (figures or {}).items():
        written += save_figure(fig, out / FIGURES / name, png=png)
    return written


def _plain(frame) -> bool:
    """Whether ``frame``'s index is a plain, unnamed row number ``0..n-1``."""
    import pandas as pd

    return frame.index.equals(pd.RangeIndex(len(frame))) and frame.index.name is None


def _frame_columns(frame) -> list[str]:
    lead = [] if _plain(frame) else [frame.index.name or "index"]
    return lead + [str(c) for c in frame.columns]


class SavesResults:
    """Mixin giving a result object the one ``save`` of the package (:func:`save_result`).

    The class sets ``command`` (what made it, recorded in ``meta``) and ``stem`` (the name of
    its main table) and has ``settings``, ``to_dict()`` and ``to_frame()``; it may override
    :meth:`tables` and :meth:`figures`.
    """

    stem: str = "result"
    command: str = "bert_repro"

    def tables(self) -> dict[str, Any]:
        """``{name: DataFrame}``: the first gives the rows of ``results.json``/``results.csv``,
        the others are written as ``<name>.csv`` (default ``{stem: to_frame()}``)."""
        return {self.stem: self.to_frame()}  # type: ignore[attr-defined]

    def figures(self) -> dict[str, Any]:
        """``{name: plotly figure}`` written as ``figures/<name>.html`` (default none)."""
        return {}

    def save(
        self,
        out_dir: str | os.PathLike,
        *,
        png: bool | None = None,
        figures: bool = True,
        command: str | None = None,
        models: dict[str, dict] | None = None,
        **metadata,
    ) -> list[Path]:
        """Write ``results.json`` (``meta``: the command line, the run's settings, models,
        package versions and time; ``rows``: the main table; ``summary``: :meth:`to_dict`),
        ``results.csv``, further tables as CSV and the figures (``figures/``, HTML, and PNG
        as :func:`save_figure` decides) into ``out_dir``, atomically.

        Args:
            out_dir: the folder.
            png: as :func:`save_figure`.
            figures: ``False``: no figures, only the results and tables.
            command: what made it (default the class's ``command``).
            models: ``{name: bert_repro.outputs.model_entry(...)}``.
            metadata: added to the settings.

        Returns:
            The files written (``results.json`` first).
        """
        return save_result(
            out_dir,
            command=command or self.command,
            settings={**self.settings, **metadata},  # type: ignore[attr-defined]
            result=self.to_dict(),  # type: ignore[attr-defined]
            tables=self.tables(),
            figures=self.figures() if figures else {},
            models=models,
            png=png,
        )
