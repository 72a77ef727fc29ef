"""The norms study of seed notebook 000: how long are BERT's vectors, before and after BERT?

For each word of a list with definitions (a CSV with ``word`` (or ``words``) and
``definition`` columns, e.g. WordNet's first-sense glosses), three L2 norms:

- ``norm_embedding``: ``|E[id(word)]|``, the word's row of the input word-embedding matrix
  (``model.bert.embeddings.weight``); the word must be one wordpiece of the vocabulary;
- ``norm_hidden``: ``|mean_t h_L[t]|``, the last hidden state of the *definition* averaged
  over its real wordpieces (``[CLS]``/``[SEP]`` included, padding excluded: the seed
  averaged over the padded batch, so its numbers depended on the batch's longest text);
- ``norm_pooler``: ``|tanh(W h_L[CLS] + b)|``, the pooler output of the definition.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataError
from ..io import SavesResults
from ..settings import ExtractionSettings
from ..text import csv_rows
from ._extraction import resolve_settings
from .sentences import sentence_features

NORM_COLUMNS: tuple[str, ...] = ("norm_embedding", "norm_hidden", "norm_pooler")
WORD_COLUMNS: tuple[str, ...] = ("word", "words")


def read_word_definitions(path: str | os.PathLike, *, limit: int | None = None):
    """Read a CSV of words and definitions.

    Args:
        path: CSV with a header row holding ``word`` or ``words`` and ``definition``
            (other columns, e.g. ``pos``, are kept).
        limit: keep only the first ``limit`` rows.

    Returns:
        A ``pandas.DataFrame`` with columns ``word``, ``definition`` (and the others), in file
        order, plus ``line`` (the 1-based line of each row, for error messages).

    Raises:
        DataError: missing file, not UTF-8, no header, missing columns, a row without the
            header's number of fields, a blank word or definition (with its line), a repeated
            word, or no rows.
        ConfigError: ``limit`` is not a positive int.
    """
    import pandas as pd

    path = Path(path)
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ConfigError(f"limit must be a positive int or None, got {limit!r}")
    rows, lines = [], []
    fields, reader = csv_rows(path)
    if not fields:
        raise DataError("empty CSV file (no header row)", path=path)
    word_col = next((c for c in WORD_COLUMNS if c in fields), None)
    if word_col is None or "definition" not in fields:
        found = ", ".join(repr(c) for c in fields)
        raise DataError(
            "a word list needs the columns 'word' (or 'words') and 'definition'; "
            f"this file has {found}",
            path=path,
            line=1,
        )
    seen: dict[str, int] = {}
    for line, row in reader:
        word = row[word_col].strip()
        definition = row["definition"].strip()
        if not word or not definition:
            what = "word" if not word else "definition"
            raise DataError(f"blank {what}", path=path, line=line)
        if word in seen:
            raise DataError(
                f"the word {word!r} is listed twice (first on line {seen[word]})",
                path=path,
                line=line,
            )
        seen[word] = line
        record = {k: v for k, v in row.items() if k not in (word_col, "definition")}
        rows.append({"word": word, "definition": definition, **record})
        lines.append(line)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise DataError("no rows after the header", path=path)
    table = pd.DataFrame(rows)
    table["line"] = lines
    return table


def word_token_ids(tokenizer, words: Sequence[str], *, lines: Sequence[int] | None = None):
    """The vocabulary id of each word, which must be a single wordpiece.

    Returns:
        ``(N,)`` int64 ids.

    Raises:
        DataError: an empty list, or words that are not one wordpiece (the first few are named,
            with their lines when ``lines`` is given).
    """
    words = list(words)
    if not words:
        raise DataError("no words given (the list is empty)")
    ids, bad = [], []
    for i, word in enumerate(words):
        pieces = tokenizer.tokenize(word)
        if len(pieces) != 1 or pieces[0] == tokenizer.unk_token:
            where = f"line {lines[i]}: " if lines is not None else ""
            bad.append(f"{where}{word!r} -> {pieces}")
            continue
        ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
    if bad:
        raise DataError(
            f"{len(bad)} word(s) are not a single wordpiece of the vocabulary, so they have no "
            f"embedding row: {'; '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
        )
    return np.asarray(ids, dtype=np.int64)


def embedding_row_norms(model, token_ids: Sequence[int]) -> np.ndarray:
    """``|E[id]|`` for each id: norms of rows of the input word-embedding matrix, ``(N,)``."""
    table = model.bert.embeddings.weight.numpy()  # (vocab, H)
    return np.linalg.norm(table[np.asarray(token_ids, dtype=np.int64)], axis=-1)


@dataclass(frozen=True, eq=False)
class NormsResult(SavesResults):
    """The three norms of every word of a word/definition list.

    Attributes:
        table: a ``pandas.DataFrame``, one row per word: ``word``, (``pos``,) ``definition``,
            ``norm_embedding``, ``norm_hidden``, ``norm_pooler``.
        settings: what made the numbers (the extraction settings).
    """

    stem: ClassVar[str] = "norms"
    command: ClassVar[str] = "embeddings norms"

    table: Any
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    def describe(self):
        """``describe()`` of the three norm columns (count, mean, std, min, quartiles, max)."""
        return describe_norms(self.table)

    def figure(self, *, title: str | None = None):
        """Histograms and box plots of the three norms (:func:`~.figures.norms_figure`)."""
        from .figures import norms_figure

        return norms_figure(self.table, **({} if title is None else {"title": title}))

    def summary(self) -> list[str]:
        """Lines to print: the :meth:`describe` table."""
        return self.describe().to_string(float_format=lambda v: f"{v:.4f}").splitlines()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the number of words and the :meth:`describe` table."""
        return {"n_words": len(self.table), "describe": self.describe().to_dict()}

    def tables(self) -> dict[str, Any]:
        return {"norms": self.table, "norms_describe": self.describe()}

    def figures(self) -> dict[str, Any]:
        return {"norms": self.figure()}


def norms_study(
    model,
    tokenizer,
    table,
    *,
    settings: ExtractionSettings | None = None,
    **options,
) -> NormsResult:
    """The three norms for every word of a word/definition table.

    Args:
        model, tokenizer: from :func:`bert_repro.models.load_bert`.
        table: a DataFrame from :func:`read_word_definitions` (or any with ``word`` and
            ``definition`` columns), or a path to such a CSV.
        settings: how BERT runs over the definitions
            (:class:`~bert_repro.settings.ExtractionSettings`); ``options`` replace some of its
            fields, e.g. ``max_batch=`` (definitions a forward pass), ``max_tokens=``,
            ``strategy=``, ``progress=``. Only the last layer is kept, so memory stays bounded
            for any number of definitions.

    Returns:
        A :class:`NormsResult` whose ``table`` has ``word``, ``definition`` (and ``pos`` when
        present) and the columns ``norm_embedding``, ``norm_hidden``, ``norm_pooler``.
    """
    if isinstance(table, (str, os.PathLike)):
        table = read_word_definitions(table)
    missing = [c for c in ("word", "definition") if c not in table.columns]
    if missing:
        raise DataError(f"the table lacks the column(s) {missing}; it has {list(table.columns)}")
    if len(table) == 0:
        raise DataError("no words given (the table is empty)")
    extraction = resolve_settings(settings, options)
    lines = table["line"].tolist() if "line" in table.columns else None
    ids = word_token_ids(tokenizer, table["word"].tolist(), lines=lines)
    feats = sentence_features(
        model, tokenizer, table["definition"].tolist(), ("mean", "pooler"), settings=extraction
    )
    keep = [c for c in ("word", "pos", "definition") if c in table.columns]
    out = table[keep].reset_index(drop=True).copy()
    out["norm_embedding"] = embedding_row_norms(model, ids)
    out["norm_hidden"] = np.linalg.norm(feats["mean"], axis=-1)
    out["norm_pooler"] = np.linalg.norm(feats["pooler"], axis=-1)
    return NormsResult(out, {"extraction": extraction.describe()})


def describe_norms(norms):
    """``describe()`` of the three norm columns (count, mean, std, min, quartiles, max) of a
    norms table (:attr:`NormsResult.table`) or a :class:`NormsResult`."""
    table = norms.table if isinstance(norms, NormsResult) else norms
    return table[list(NORM_COLUMNS)].describe()
