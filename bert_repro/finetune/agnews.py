"""AG News (Zhang et al., 2015): news titles and descriptions in four topics, from
tensorflow-datasets ``ag_news_subset`` or a CSV file (``label,title,description``).

A news item is classified from ``title + " " + description``, the text the Hugging Face
``ag_news`` dataset (the seed notebook's data) gives.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..errors import DataError
from ..text import read_utf8
from .classification import ClassificationExample
from .sources import text, tfds_records

# Label order of tfds ag_news_subset; the CSV files number them 1..4 in this order.
AGNEWS_LABELS: tuple[str, ...] = ("World", "Sports", "Business", "Sci/Tech")
TFDS_NAME = "ag_news_subset"
TRAIN_SPLIT = "train"  # 120,000
EVAL_SPLIT = "test"  # 7,600
_COLUMNS = ("label", "title", "description")


def agnews_text(title: str, description: str) -> str:
    """The text to classify: the title and the description joined by one space."""
    return " ".join(part.strip() for part in (title, description) if part.strip())


def load_agnews_tfds(
    split: str = TRAIN_SPLIT, *, data_dir: str | os.PathLike | None = None
) -> list[ClassificationExample]:
    """Read an ``ag_news_subset`` split (``title``, ``description``, ``label`` 0..3)."""
    examples = [
        ClassificationExample(
            agnews_text(text(r["title"]), text(r["description"])), None, int(r["label"]), str(i)
        )
        for i, r in enumerate(tfds_records(TFDS_NAME, split, data_dir=data_dir))
    ]
    if not examples:
        raise DataError(f"{TFDS_NAME} split {split!r} is empty")
    return examples


def read_agnews_csv(path: str | os.PathLike) -> list[ClassificationExample]:
    """Read AG News rows ``label,title,description`` with labels 1..4 (mapped to 0..3).

    A header row naming the three columns is used when present (any column order); without
    one (the original distribution's files), the columns are in that order.

    Raises:
        DataError: missing file, not UTF-8, a row with more or fewer fields than the header
            (three without one: an unquoted comma shifts the columns), or a label outside 1..4
            (with its line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    examples = []
    reader = csv.reader(io.StringIO(read_utf8(path, bom=True), newline=""))
    try:
        first = next(reader, None)
        if first is None:
            raise DataError("empty file", path=path)
        names = [c.strip().lower() for c in first]
        if "label" in names:
            missing = [c for c in _COLUMNS if c not in names]
            if missing:
                raise DataError(f"header lacks columns {missing}", path=path, line=1)
            col = [names.index(c) for c in _COLUMNS]
            width = len(names)
            rows = reader
        else:
            col = [0, 1, 2]
            width = len(_COLUMNS)
            rows = _chain_first(first, reader)
        for row in rows:
            line = reader.line_num
            while len(row) > width and not row[-1].strip():
                row = row[:-1]  # trailing commas
            if not any(v.strip() for v in row):
                continue
            if len(row) != width:
                raise DataError(
                    f"expected {width} fields {_COLUMNS if width == 3 else names}, got "
                    f"{len(row)} (an unquoted comma, or a missing value?)",
                    path=path,
                    line=line,
                )
            raw = row[col[0]].strip()
            if raw not in ("1", "2", "3", "4"):
                raise DataError(f"label {raw!r} is not one of 1, 2, 3, 4", path=path, line=line)
            examples.append(
                ClassificationExample(
                    agnews_text(row[col[1]], row[col[2]]), None, int(raw) - 1, f"line {line}"
                )
            )
    except csv.Error as err:
        raise DataError(f"malformed CSV: {err}", path=path, line=reader.line_num) from None
    if not examples:
        raise DataError("no rows", path=path)
    return examples


def _chain_first(first, rest):
    yield first
    yield from rest
