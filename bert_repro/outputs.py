"""A command's output folder: the one results schema, and the one rule for an existing ``--out``.

Every command writes ``<out>/results.json``::

    {"meta": {"argv": [...] | null,        # the command line (null for a library call)
              "command": "probe sweep",      # what made it
              "settings": {...},             # the resolved settings
              "versions": {...},             # packages that change results
              "models": {name: {"path": ..., "fingerprint": ...}},
              "time": "2024-01-01T00:00:00Z"},  # UTC, ISO 8601
     "rows": [{...}, ...],                   # the result table, one flat dict a row
     ...}                                    # a command's extra sections (e.g. "summary")

and the same rows as the tidy ``<out>/results.csv`` (the header is the rows' keys; every row
has every key, ``null``/empty where a value is missing; a list of numbers is one cell, its
values space-separated). Figures go to ``<out>/figures/``. :func:`write_results` is the one
writer, :func:`read_results` the one reader (it also reads the layouts of earlier versions, so
their folders keep loading and resuming).

The rule for an existing ``--out`` (:func:`prepare_out`): an empty or missing folder is used;
a folder holding results of the same command made with the same settings is continued by the
commands that can resume (probe sweep/train/evaluate/edge, reproduce) and refused by the
others; other settings are refused with a message naming them; ``overwrite=True``
(``--overwrite``) deletes the earlier results folder first.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import io
import math
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError
from .io import _to_jsonable, atomic_write_json, atomic_write_text, package_versions, read_json

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
FIGURES = "figures"
META_KEYS = ("argv", "command", "settings", "versions", "models", "time")
#: Result files of earlier versions, read by :func:`read_results` when ``results.json`` is
#: missing (``edge_results``: ``probe edge``; ``evaluation``: ``probe evaluate``; the others:
#: ``compare`` and the ``embeddings`` studies).
LEGACY_NAMES = (
    "edge_results.json",
    "evaluation.json",
    "similarity.json",
    "norms.json",
    "classify.json",
    "decompose.json",
)

_ARGV: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("argv", default=None)


@contextlib.contextmanager
def command_line(argv: Sequence[str] | None) -> Iterator[None]:
    """Record ``argv`` as the command line in every ``results.json`` written inside.

    The command line (:func:`bert_repro.cli.main`) enters it; a library call outside it
    records ``argv: null``.
    """
    token = _ARGV.set(None if argv is None else [str(a) for a in argv])
    try:
        yield
    finally:
        _ARGV.reset(token)


def current_argv() -> list[str] | None:
    """The command line being run (:func:`command_line`), or None for a library call."""
    argv = _ARGV.get()
    return None if argv is None else list(argv)


def model_entry(
    source: str | os.PathLike | None, *, model=None, fingerprint: str | None = None
) -> dict[str, str | None]:
    """``{"path", "fingerprint"}`` of a model for ``meta["models"]``.

    Args:
        source: what it was loaded from: a folder, a hub name, or None for the offline
            default (recorded as its folder).
        model: the loaded model; its :func:`bert_repro.models.model_fingerprint` (weights and
            config) is recorded unless ``fingerprint`` is given.
        fingerprint: a fingerprint already computed.
    """
    if source is None:
        from .errors import ModelError
        from .models import default_model_path

        with contextlib.suppress(ModelError):
            source = default_model_path()
    if fingerprint is None and model is not None:
        from .models import model_fingerprint

        fingerprint = model_fingerprint(model)
    return {"path": None if source is None else str(source), "fingerprint": fingerprint}


def results_meta(
    *,
    command: str,
    settings: Mapping[str, Any],
    models: Mapping[str, Mapping[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``meta`` of a ``results.json`` (module docstring); ``extra`` adds keys after them
    (e.g. ``inputs``: the input files' fingerprints)."""
    return {
        "argv": current_argv(),
        "command": command,
        "settings": _to_jsonable(dict(settings)),
        "versions": package_versions(),
        "models": _to_jsonable({str(k): dict(v) for k, v in (models or {}).items()}),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **_to_jsonable(extra),
    }


def tidy_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """``(header, rows)``: ``columns`` (default none) then every other key in first-seen
    order; each row gets every key (None where missing), values made JSON-plain."""
    header = list(columns or ())
    seen = set(header)
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                header.append(str(key))
    tidy = [{k: _to_jsonable(row.get(k)) for k in header} for row in rows]
    return header, tidy


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""  # a missing or undefined value (NaN) is an empty cell
    if isinstance(value, (list, tuple)):  # e.g. a scalar mix's weights
        return " ".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in value)
    return value


def rows_csv(header: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV text under ``header`` (empty cells for None, lists space-separated)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(header), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in header})
    return buf.getvalue()


def write_results(
    out: str | os.PathLike,
    rows: Sequence[Mapping[str, Any]],
    *,
    command: str,
    settings: Mapping[str, Any] | None = None,
    models: Mapping[str, Mapping[str, Any]] | None = None,
    columns: Sequence[str] | None = None,
    meta: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``<out>/results.json`` and ``<out>/results.csv`` atomically (module docstring).

    Args:
        out: the folder (made when missing).
        rows: the result table, one mapping a row.
        command: what made them (``"compare"``, ``"probe sweep"``, ...).
        settings: the resolved settings.
        models: ``{name: model_entry(...)}``.
        columns: leading CSV columns in this order (other keys follow, see :func:`tidy_rows`).
        meta: a ready ``meta`` (:func:`results_meta`) instead of ``command``/``settings``/
            ``models`` (kept by a file rewritten after every row).
        extra: more top-level sections beside ``meta`` and ``rows`` (e.g. ``summary``).

    Returns:
        The two files.
    """
    out = Path(out)
    if meta is None:
        meta = results_meta(command=command, settings=settings or {}, models=models)
    header, tidy = tidy_rows(rows, columns)
    extra = {k: v for k, v in (extra or {}).items() if k not in ("meta", "rows")}
    return [
        atomic_write_json(out / RESULTS_JSON, {"meta": dict(meta), "rows": tidy, **extra}),
        atomic_write_text(out / RESULTS_CSV, rows_csv(header, tidy)),
    ]


@dataclass(frozen=True)
class SavedResults:
    """A ``results.json`` read back (:func:`read_results`).

    Attributes:
        path: the file read.
        meta: its ``meta`` (an earlier version's metadata mapped onto the same keys; missing
            ones are None).
        rows: its rows.
        extra: its other top-level sections (an earlier version's ``result`` is ``summary``).
    """

    path: Path
    meta: dict[str, Any]
    rows: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.meta.get("settings") or {})


def results_path(folder: str | os.PathLike, legacy: Sequence[str] = LEGACY_NAMES) -> Path:
    """``<folder>/results.json``, or the first of an earlier version's ``legacy`` names there
    when only that exists."""
    folder = Path(folder)
    path = folder / RESULTS_JSON
    if not path.exists():
        for name in legacy:
            if (folder / name).exists():
                return folder / name
    return path


def parse_results(data: Any, path: str | os.PathLike = RESULTS_JSON) -> SavedResults:
    """A :class:`SavedResults` of parsed JSON in this or an earlier version's layout.

    Earlier layouts: ``{"metadata": {settings, versions, time_utc, inputs}, "results": rows}``
    (probe sweeps, evaluations, edge probes) and ``{settings, versions, time_utc, result}``
    (the other commands' ``<stem>.json``).

    Raises:
        DataError: it is none of them.
    """
    path = Path(path)
    if not isinstance(data, dict):
        raise DataError("not a results file (not a JSON object)", path=path)
    if isinstance(data.get("meta"), dict) and isinstance(data.get("rows", []), list):
        meta = {k: data["meta"].get(k) for k in META_KEYS} | data["meta"]
        extra = {k: v for k, v in data.items() if k not in ("meta", "rows")}
        return SavedResults(path, meta, list(data.get("rows", [])), extra)
    old = data.get("metadata") if isinstance(data.get("metadata"), dict) else None
    if old is None and ("result" in data or "settings" in data or "results" in data):
        old = data
    if old is None:
        raise DataError("not a results file (no meta, rows or metadata)", path=path)
    meta = {k: None for k in META_KEYS} | {
        "settings": old.get("settings") or {},
        "versions": old.get("versions") or {},
        "models": {},
        "time": old.get("time_utc"),
    }
    if "inputs" in old:
        meta["inputs"] = old["inputs"]
    if "results" in data:
        return SavedResults(path, meta, list(data.get("results") or []))
    result = data.get("result") or {}
    rows = result.get("rows") if isinstance(result.get("rows"), list) else []
    extra = {"summary": result} if result else {}
    return SavedResults(path, meta, list(rows), extra)


def read_results(path: str | os.PathLike, legacy: Sequence[str] = LEGACY_NAMES) -> SavedResults:
    """Read a ``results.json`` (a file, or a folder: :func:`results_path`), in this or an
    earlier version's layout (:func:`parse_results`).

    Raises:
        FileNotFoundError: there is none. DataError: it is not a results file.
    """
    path = Path(path)
    if path.is_dir():
        path = results_path(path, legacy)
    try:
        data = read_json(path)
    except ValueError as err:
        raise DataError(f"not a results file ({err})", path=path) from None
    return parse_results(data, path)


def _fix(command: str) -> str:
    return f"give --overwrite to replace them, or choose another --out folder (`{command}`)"


def _holding(found: Path) -> str:
    """`` (it holds the results of `compare`)`` when ``found`` is a readable results file."""
    try:
        made_by = read_results(found).meta.get("command") if found.exists() else None
    except (DataError, OSError):
        return ""
    return f" (it holds the results of `{made_by}`)" if made_by else ""


def _differences(before: Mapping, now: Mapping, keys: Sequence[str] | None) -> list[str]:
    keys = list(now) if keys is None else list(keys)
    return [k for k in keys if k in before and k in now and before[k] != now[k]]


def prepare_out(
    out: str | os.PathLike,
    *,
    command: str,
    settings: Mapping[str, Any] | None = None,
    resume: Sequence[str] | bool = False,
    overwrite: bool = False,
    legacy: Sequence[str] = LEGACY_NAMES,
    markers: Sequence[str] = (),
) -> SavedResults | None:
    """Apply the one rule for an existing output folder before any work is done.

    * missing or empty: used (nothing is created here);
    * ``overwrite``: an earlier results folder (one holding a ``results.json`` of this package,
      or an earlier version's result file) is deleted with everything in it; any other
      non-empty folder is refused (it may be something else entirely);
    * ``resume`` (the setting keys that must match, or ``True`` for all of ``settings``):
      earlier results of the same command with the same values of those settings are returned
      for the caller to continue; other values are refused, naming each setting and both
      values; a non-empty folder without results (a run stopped before its first row) is
      continued;
    * otherwise (a command that cannot resume) a non-empty folder is refused.

    Args:
        out: the ``--out`` folder.
        command: the command writing it (compared with the earlier results' ``command``).
        settings: the run's settings (JSON-plain values, as they are recorded).
        resume: see above; False for commands that cannot resume.
        overwrite: replace the earlier results.
        legacy: earlier versions' result file names (:data:`LEGACY_NAMES`).
        markers: other files that show the folder is this command's before it wrote results
            (the reproduction's ``state.json``): ``overwrite`` may delete it.

    Returns:
        The earlier results to continue, or None.

    Raises:
        ConfigError: the folder is refused (the message names why and the fix).
        DataError: the earlier ``results.json`` is not a results file.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    if not out.exists() or not any(out.iterdir()):
        return None
    found = results_path(out, legacy)
    if overwrite:
        if not found.exists() and not any((out / m).exists() for m in markers):
            raise ConfigError(
                f"--out {out} is not empty and holds no bert-repro results ({RESULTS_JSON}): "
                "--overwrite only replaces an earlier results folder; choose another --out "
                "folder or empty it yourself"
            )
        shutil.rmtree(out)
        return None
    if not resume:
        raise ConfigError(
            f"--out {out} exists and is not empty{_holding(found)} and `{command}` cannot "
            f"continue it: {_fix(command)}"
        )
    if not found.exists():
        return None  # a run stopped before its first result: continued
    try:
        earlier = read_results(found, legacy)
    except DataError as err:
        raise DataError(
            f"cannot continue from it: {err.reason}; {_fix(command)}", path=found
        ) from None
    made_by = earlier.meta.get("command")
    if made_by is not None and made_by != command:
        raise ConfigError(
            f"--out {out} holds the results of `{made_by}`, not of `{command}`: {_fix(command)}"
        )
    now = _to_jsonable(dict(settings or {}))
    diff = _differences(earlier.settings, now, None if resume is True else resume)
    if diff:
        shown = "; ".join(f"{k}: {earlier.settings[k]!r} then, {now[k]!r} now" for k in diff)
        raise ConfigError(
            f"--out {out} holds results made with other settings ({shown}): give the same "
            f"settings to continue them, --overwrite to replace them, or another --out folder"
        )
    return earlier
