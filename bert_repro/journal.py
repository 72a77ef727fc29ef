"""Reuse finished work only while nothing it depends on has changed.

One rule for everything that resumes or reuses (the reproduction's steps, a probe sweep's
results, the feature cache): finished work is recorded with the digest of its settings and a
fingerprint of each input, and reused only when both still match.

* :func:`input_fingerprints`: data files by content (``"sha256:..."``, the SHA-256 of the
  bytes: tens of MB at most, under a second), model folders by each file's name, size and
  ``mtime_ns`` (``"stat:..."``: weights run to gigabytes, and whatever rewrites them changes the
  time); a path that does not exist (yet) maps to ``None``.
* :func:`changed`: which inputs differ between two such records.
* :class:`Journal`: a JSON file of finished entries, rewritten atomically after each one, that
  says why an entry must be redone (a phrase for the user) or that it stands.

The feature cache applies the same rule through its key (model and tokenizer fingerprints, the
corpus's hash, the settings) and verifies its files against their SHA-256
(:mod:`bert_repro.cache`); its ``.partial-<key>`` folder journals per-sentence progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from .io import atomic_write_json, file_fingerprint, folder_fingerprint, read_json

Paths = Mapping[str, str | os.PathLike | None] | Iterable[str | os.PathLike | None]


def _named(paths: Paths) -> dict[str, Path]:
    """``{name: path}``: a mapping keeps its names, a list is keyed by the paths themselves."""
    items = paths.items() if isinstance(paths, Mapping) else ((str(p), p) for p in paths)
    return {str(name): Path(p) for name, p in items if p is not None}


def input_fingerprints(files: Paths = (), folders: Paths = ()) -> dict[str, str | None]:
    """``{name: fingerprint}`` of the data ``files`` (content) and model ``folders`` (names,
    sizes, times); ``None`` paths are skipped, missing ones map to ``None``.

    Call it before the inputs are read: a file edited in between then gives results recorded
    under its old fingerprint, which the next run finds changed (the safe way round).
    """
    out: dict[str, str | None] = {}
    for name, p in _named(files).items():
        out[name] = "sha256:" + file_fingerprint(p) if p.is_file() else None
    for name, p in _named(folders).items():
        out[name] = "stat:" + folder_fingerprint(p) if p.is_dir() else None
    return out


def changed(before: object, now: Mapping[str, str | None]) -> list[str] | None:
    """Names whose fingerprint differs between two :func:`input_fingerprints` records, in
    ``now``'s order then ``before``'s; ``None`` when ``before`` is no record at all (made by an
    earlier version)."""
    if not isinstance(before, dict):
        return None
    diff = [name for name, fp in now.items() if before.get(name, "absent") != fp]
    return diff + [name for name in before if name not in now]


def settings_digest(settings: object, inputs: Mapping | None = None) -> str:
    """Short hash of the settings (and, when given, the input fingerprints)."""
    key = settings if inputs is None else {"settings": settings, "inputs": inputs}
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Journal:
    """A JSON file of finished entries: ``{field: {name: {settings, inputs, seconds, ...}}}``.

    Args:
        path: the file (read when it exists).
        field: the top-level key holding the entries (``"steps"`` for the reproduction).

    Attributes:
        entries: what has finished, by name.
    """

    def __init__(self, path: str | os.PathLike, *, field: str = "entries"):
        self.path = Path(path)
        self.field = field
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            self.entries = read_json(self.path).get(field, {})

    def why_redo(
        self,
        name: str,
        settings: object,
        outputs: Iterable[str | os.PathLike] = (),
        inputs: Mapping[str, str | None] | None = None,
    ) -> str | None:
        """Why entry ``name`` must be (re)done, as a phrase; ``None`` when it stands."""
        entry = self.entries.get(name)
        if not entry:
            return "not run before"
        if inputs is not None:
            diff = changed(entry.get("inputs"), inputs)
            if diff is None:
                return "the earlier run recorded no fingerprints of its inputs"
            if diff:
                return f"input {', '.join(diff)} changed since the earlier run"
        if entry.get("settings") != settings_digest(settings, inputs):
            return "its settings changed since the earlier run"
        missing = [str(p) for p in outputs if not Path(p).exists()]
        if missing:
            return f"its output {', '.join(missing)} is missing"
        return None

    def record(
        self,
        name: str,
        settings: object,
        seconds: float,
        inputs: Mapping[str, str | None] | None = None,
    ) -> None:
        """Record ``name`` as finished and rewrite the file atomically."""
        self.entries[name] = {
            "settings": settings_digest(settings, inputs),
            **({} if inputs is None else {"inputs": dict(inputs)}),
            "seconds": round(seconds, 1),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_json(self.path, {self.field: self.entries})
