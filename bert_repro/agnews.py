"""AG News (Zhang, Zhao & LeCun, NIPS 2015): news titles and descriptions in four topics.

The one reader of the dataset, used by the fine-tuning task (:mod:`bert_repro.finetune`) and
the frozen-feature classifier (:mod:`bert_repro.embeddings.classifier`): the CSV files of the
original distribution (``label,title,description``, labels 1..4, with or without a header row,
as in ``../shared/data/ag-news/test.csv``) and tensorflow-datasets' ``ag_news_subset``, which
holds the same strings (labels 0..3). Both give the same text for the same item, cleaned by
one rule (:func:`clean_agnews_text`).
"""

from __future__ import annotations

import csv
import html
import io
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .data import as_text, tfds_records
from .errors import ConfigError, DataError
from .text import read_utf8

#: Label order of tfds ``ag_news_subset``; the CSV files number them 1..4 in this order.
AGNEWS_LABELS: tuple[str, ...] = ("World", "Sports", "Business", "Sci/Tech")
TFDS_NAME = "ag_news_subset"
TRAIN_SPLIT = "train"  # 120,000
EVAL_SPLIT = "test"  # 7,600
COLUMNS: tuple[str, ...] = ("label", "title", "description")

_ESCAPED_DOLLAR = re.compile(r"\\\$")
_BACKSLASHES = re.compile(r"\\+")
# "doesn #39;t", "the  #36;10": an HTML reference whose "&" the corpus turned into a space
_BARE_CHARREF = re.compile(r"(?<!&) ?#(\d{2,5});")


def clean_agnews_text(text: str) -> str:
    """One field of AG News as plain text: the corpus' escapes undone, whitespace collapsed.

    The dataset's readme says that "new lines are escaped by a backslash followed with an
    'n' character"; the files do not do that. In them a line break is a bare backslash
    (``"Wall Street's dwindling\\band of ultra-cynics"``, ``"a second\\team of rocketeers"``),
    a paragraph break two (``"Five Sources\\\\A9, the search engine"``), and ``\\$`` is an
    escaped dollar sign (``"\\$160 million"``, 656 times in the test split). Reading ``\\n``
    as a newline would cut the word after a line break that starts with *n*
    (``"gave\\no indication"``, ``"social\\network"``, ``"\\nuclear-capable"``: 11 times in
    the test split). The rule, in order:

    1. ``\\$`` is ``$``;
    2. any other run of backslashes is a line break: a space (words on either side stay
       apart: ``dwindling band``);
    3. HTML character references are decoded: the numeric ones whose ``&`` the corpus turned
       into a space (``"doesn #39;t"`` -> ``"doesn't"``, ``"the  #36;10"`` -> ``"the $10"``,
       ``#151;`` -> an em dash, as HTML5 reads Windows-1252 codes; 2,789 ``#39;`` in the test
       split) and the named ones (``&lt;TXN.N&gt;`` -> ``<TXN.N>``, ``&amp;`` -> ``&``,
       ``&quot;`` -> ``"``);
    4. whitespace runs (real line breaks inside quoted fields included) become one space, and
       the ends are stripped.

    Quotes need nothing here: CSV's ``""`` inside a quoted field is one ``"``, undone by the
    CSV reader. tfds ``ag_news_subset`` carries the same raw strings, so it goes through the
    same rule.

    Args:
        text: a title or a description as stored.

    Returns:
        The cleaned text (``""`` for a blank field).
    """
    text = _ESCAPED_DOLLAR.sub("$", text)
    text = _BACKSLASHES.sub(" ", text)
    text = html.unescape(_BARE_CHARREF.sub(r"&#\1;", text))
    return " ".join(text.split())


def agnews_text(title: str, description: str) -> str:
    """The text to classify: the cleaned title and description joined by one space (the text
    the Hugging Face ``ag_news`` dataset, the seed notebook's data, gives)."""
    return " ".join(part for part in map(clean_agnews_text, (title, description)) if part)


@dataclass(frozen=True)
class NewsItem:
    """One AG News item.

    Attributes:
        text: :func:`agnews_text` of its title and description.
        label: 0..3, an index into :data:`AGNEWS_LABELS`.
        line: the 1-based line it starts on in its CSV file (``None`` from tfds).
    """

    text: str
    label: int
    line: int | None = None


def _check_limit(limit: int | None) -> None:
    if limit is not None and (
        not isinstance(limit, numbers.Integral) or isinstance(limit, bool) or limit < 1
    ):
        raise ConfigError(f"limit must be a positive int or None, got {limit!r}")


def is_agnews_header(fields: list[str]) -> bool:
    """Whether a CSV header row names AG News' three columns (any order and case)."""
    names = {c.strip().lower() for c in fields}
    return set(COLUMNS) <= names


def read_agnews_csv(path: str | os.PathLike, *, limit: int | None = None) -> list[NewsItem]:
    """Read AG News rows ``label,title,description`` with labels 1..4 (mapped to 0..3).

    A header row naming the three columns is used when present (any column order); without
    one (the original distribution's files), the columns are in that order. Texts are cleaned
    by :func:`clean_agnews_text`.

    Args:
        path: the CSV file (UTF-8, an optional byte-order mark).
        limit: keep only the first ``limit`` items (all when None).

    Returns:
        The items in file order.

    Raises:
        DataError: missing file, not UTF-8, a row with more or fewer fields than the header
            (three without one: an unquoted comma shifts the columns), a label outside 1..4 or
            a blank text (with its line), or no rows.
        ConfigError: ``limit`` is not a positive int.
    """
    _check_limit(limit)
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    items: list[NewsItem] = []
    reader = csv.reader(io.StringIO(read_utf8(path, bom=True), newline=""))
    try:
        first = next(reader, None)
        if first is None:
            raise DataError("empty file", path=path)
        names = [c.strip().lower() for c in first]
        if "label" in names:
            missing = [c for c in COLUMNS if c not in names]
            if missing:
                raise DataError(f"header lacks columns {missing}", path=path, line=1)
            col = [names.index(c) for c in COLUMNS]
            width, start, rows = len(names), 2, reader
        else:
            col, width, start, rows = [0, 1, 2], len(COLUMNS), 1, _chain_first(first, reader)
        for row in rows:
            line, start = start, reader.line_num + 1
            while len(row) > width and not row[-1].strip():
                row = row[:-1]  # trailing commas
            if not any(v.strip() for v in row):
                continue
            if len(row) != width:
                shape = (
                    f"the row has {len(row)} fields but the header has {width}"
                    if rows is reader
                    else f"expected {width} fields {COLUMNS}, got {len(row)}"
                )
                raise DataError(
                    f"{shape} (an unquoted comma, or a missing value?)", path=path, line=line
                )
            raw = row[col[0]].strip()
            if raw not in ("1", "2", "3", "4"):
                raise DataError(f"label {raw!r} is not one of 1, 2, 3, 4", path=path, line=line)
            text = agnews_text(row[col[1]], row[col[2]])
            if not text:
                raise DataError("blank title and description", path=path, line=line)
            items.append(NewsItem(text, int(raw) - 1, line))
            if limit is not None and len(items) >= limit:
                break
    except csv.Error as err:
        raise DataError(f"malformed CSV: {err}", path=path, line=reader.line_num) from None
    if not items:
        raise DataError("no rows", path=path)
    return items


def _chain_first(first, rest):
    yield first
    yield from rest


def load_agnews_tfds(
    split: str = TRAIN_SPLIT,
    *,
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
) -> list[NewsItem]:
    """Read an ``ag_news_subset`` split (``title``, ``description``, ``label`` 0..3; 120,000
    train, 7,600 test items) through :func:`bert_repro.data.load_tfds`.

    Args:
        split: a tfds split spec, e.g. ``"test"`` or ``"train[:10%]"``.
        data_dir: where the prepared dataset lies.
        limit: keep only the first ``limit`` items.

    Raises:
        DataError: the split is not prepared here (see :func:`~bert_repro.data.load_tfds`)
            or is empty.
    """
    _check_limit(limit)
    items = [
        NewsItem(agnews_text(as_text(r["title"]), as_text(r["description"])), int(r["label"]))
        for r in tfds_records(TFDS_NAME, split, data_dir=data_dir, limit=limit)
    ]
    if not items:
        raise DataError(f"tfds {TFDS_NAME!r} split {split!r} is empty")
    return items
