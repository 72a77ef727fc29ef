"""What each reproduction step reads, and a fingerprint of each: a changed input re-runs the step.

Data files (treebanks, CSV, JSON, text) are fingerprinted by their content
(:func:`bert_repro.io.file_fingerprint`, SHA-256 of the bytes: tens of MB at most, under a
second). Model folders are fingerprinted by each file's name, size and ``mtime_ns``
(:func:`bert_repro.io.folder_fingerprint`): their weights run to gigabytes, and anything that
writes them (a re-run fine-tuning, a replaced checkpoint) changes the time. Models named on the
hub and tensorflow-datasets sources (``wiki40b``) are not local files and are keyed by their
names only (a tfds dataset is versioned and immutable once prepared).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..io import file_fingerprint, folder_fingerprint
from ..text import TEXT_SOURCE_KINDS


def text_source_file(spec: str) -> str | None:
    """The local file a :func:`bert_repro.text.load_texts` spec reads, or None (wiki40b).

    >>> text_source_file("csv:data/test.csv:description")
    'data/test.csv'
    """
    kind, sep, rest = spec.partition(":")
    if kind == "wiki40b":
        return None
    if not sep or kind not in TEXT_SOURCE_KINDS:
        return spec  # a bare path
    if kind == "csv":
        return rest.rpartition(":")[0]
    return rest


def model_folder(source: str | os.PathLike | None) -> Path | None:
    """The local folder a model is loaded from (``None``: the offline default's, when it is
    installed), or None for a hub name."""
    if source is None:
        from ..errors import ModelError
        from ..models import default_model_path

        try:
            return default_model_path()
        except ModelError:
            return None  # loading it will say so
    path = Path(source).expanduser()
    return path if path.is_dir() else None


def input_fingerprints(
    files: Iterable[str | os.PathLike | None] = (),
    folders: Iterable[str | os.PathLike | None] = (),
) -> dict[str, str | None]:
    """``{path: fingerprint}`` of the data ``files`` (``"sha256:..."``, content) and model
    ``folders`` (``"stat:..."``, names, sizes and times); None entries are skipped and a path
    that does not exist (yet) maps to None."""
    out: dict[str, str | None] = {}
    for path in files:
        if path is not None:
            p = Path(path)
            out[str(p)] = "sha256:" + file_fingerprint(p) if p.is_file() else None
    for path in folders:
        if path is not None:
            p = Path(path)
            out[str(p)] = "stat:" + folder_fingerprint(p) if p.is_dir() else None
    return out


def changed(before: dict | None, now: dict) -> list[str] | None:
    """Paths whose fingerprint differs between two :func:`input_fingerprints` records, in
    ``now``'s order then ``before``'s; None when ``before`` is no record at all."""
    if not isinstance(before, dict):
        return None
    diff = [p for p, fp in now.items() if before.get(p, "absent") != fp]
    return diff + [p for p in before if p not in now]
