"""What each reproduction step reads: the local files and folders whose fingerprints
(:func:`bert_repro.journal.input_fingerprints`) key its reuse.

Models named on the hub and tensorflow-datasets sources (``wiki40b``) are not local files and
are keyed by their names only (a tfds dataset is versioned and immutable once prepared).
"""

from __future__ import annotations

import os
from pathlib import Path

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
