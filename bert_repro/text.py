"""Text sources: wiki40b paragraphs (tensorflow-datasets), CoNLL-U sentences, CSV columns,
plain-text files, and the normalisation of whatever a user passes as "the texts".

Every source yields ``str`` texts, never blank ones (a blank text has no wordpiece to compare).
File sources read the whole file at once and fail before any model work on a missing file or
column; the wiki40b source streams, because the split holds millions of articles.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import DataError, check_not_string

WIKI40B_MARKERS: tuple[str, ...] = (
    "_START_ARTICLE_",
    "_START_SECTION_",
    "_START_PARAGRAPH_",
)
_NEWLINE = "_NEWLINE_"
_MARKER_RE = re.compile("|".join(re.escape(m) for m in WIKI40B_MARKERS))

TEXT_SOURCE_KINDS: tuple[str, ...] = ("wiki40b", "conllu", "csv", "txt")


# --------------------------------------------------------------------------------------------
# wiki40b
# --------------------------------------------------------------------------------------------


def parse_wiki40b(markup: str | bytes, *, newline: str = "\n") -> list[str]:
    """Paragraphs of one wiki40b article.

    A wiki40b ``text`` field reads::

        _START_ARTICLE_
        Title
        _START_SECTION_
        Section title
        _START_PARAGRAPH_
        First paragraph._NEWLINE_Its next line.
        _START_SECTION_
        ...

    A paragraph is the text after a ``_START_PARAGRAPH_`` marker up to the next marker (or the
    end), with each ``_NEWLINE_`` replaced by ``newline`` and the ends stripped. Article and
    section titles are not paragraphs. Blank paragraphs are dropped.

    Args:
        markup: the article's ``text`` (UTF-8 bytes as tf.data gives them, or str).
        newline: what ``_NEWLINE_`` becomes (BERT's tokenizer treats any whitespace alike).

    Returns:
        The paragraphs in article order.

    Raises:
        DataError: ``markup`` is bytes that are not UTF-8.
    """
    if isinstance(markup, bytes):
        markup = _decode(markup, "wiki40b markup")
    paragraphs = []
    pieces = _MARKER_RE.split(markup)
    markers = _MARKER_RE.findall(markup)
    # pieces[0] precedes the first marker; pieces[i + 1] follows markers[i].
    for marker, body in zip(markers, pieces[1:], strict=True):
        if marker != "_START_PARAGRAPH_":
            continue
        text = body.replace(_NEWLINE, newline).strip()
        if text:
            paragraphs.append(text)
    return paragraphs


def looks_like_wiki40b(text: str) -> bool:
    """True when ``text`` is wiki40b markup (it starts with ``_START_ARTICLE_``)."""
    return text.lstrip().startswith("_START_ARTICLE_")


def wiki40b_paragraphs(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    *,
    language: str = "en",
    download: bool = False,
) -> Iterator[str]:
    """Stream the paragraphs of a wiki40b split, article after article.

    Loads ``wiki40b/<language>`` with :func:`bert_repro.data.load_tfds` (the real builder;
    tests use ``tfds.testing.mock_data``) and splits each article with :func:`parse_wiki40b`.

    Args:
        split: a tfds split spec, e.g. ``"train"``, ``"validation"``, ``"test[:1%]"``.
        data_dir: where the prepared dataset lies (tfds' default when None).
        limit: stop after the first ``limit`` paragraphs (all when None).
        language: wiki40b language config.
        download: let tfds build the dataset if missing (wiki40b is built with Apache Beam from
            Google Cloud Storage; prepare it once on a machine with internet).

    Returns:
        An iterator of paragraphs. The dataset is opened before the first paragraph is asked
        for, so a missing dataset fails here, not later.

    Raises:
        DataError: the dataset is not prepared in ``data_dir``.
    """
    from .data import load_tfds

    ds = load_tfds(
        f"wiki40b/{language}",
        split,
        data_dir=data_dir,
        download=download,
        hint="CLI: --texts wiki40b:SPLIT:DIR",
    )
    return iter_texts(ds, limit)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", path=path)
    return path


def _decode(data: bytes, what: str, path: str | os.PathLike | None = None, encoding="utf-8"):
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{what} is not UTF-8 text ({err.reason} at byte {err.start})", path=path, line=line
        ) from None


def read_utf8(path: str | os.PathLike, *, bom: bool = False) -> str:
    """The whole text of a UTF-8 file (line ends kept as they are).

    Args:
        path: the file.
        bom: drop a leading byte-order mark (spreadsheets write one before CSV text).

    Raises:
        DataError: the file is missing, is a folder, cannot be read, or is not UTF-8 (naming
            the line of the first invalid byte).
    """
    path = _check_file(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read the file ({err.strerror or err})", path=path) from None
    return _decode(data, "the file", path, "utf-8-sig" if bom else "utf-8")


def csv_rows(path: str | os.PathLike) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and the rows of a CSV file (UTF-8, optional byte-order mark, header row).

    Every row must have as many fields as the header: with more or fewer, its values would be
    read into the wrong columns (the usual cause is an unquoted comma), so it is refused with
    its line. Blank extra fields at the end (trailing commas) are allowed, and blank lines are
    skipped.

    Args:
        path: the file, comma-separated and quoted as the ``csv`` module reads it.

    Returns:
        ``(columns, rows)``: the header's column names (``[]`` for an empty file) and an
        iterator of ``(line, {column: value})``, ``line`` the 1-based line the row starts on.

    Raises:
        DataError: the file is missing or not UTF-8, or (while iterating) a row is malformed
            or does not have the header's number of fields; the message names the line.
    """
    path = Path(path)
    reader = csv.reader(io.StringIO(read_utf8(path, bom=True), newline=""))
    try:
        header = next(reader, [])
    except csv.Error as err:
        raise DataError(f"malformed CSV header: {err}", path=path, line=1) from None

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise DataError(f"malformed CSV row: {err}", path=path, line=start) from None
            line, start = start, reader.line_num + 1
            if len(row) > len(header) and not any(v.strip() for v in row[len(header) :]):
                row = row[: len(header)]
            if len(row) != len(header):
                if not any(v.strip() for v in row):
                    continue  # a blank line
                raise DataError(
                    f"the row has {len(row)} fields but the header has {len(header)} "
                    "(an unquoted comma, or a missing value?)",
                    path=path,
                    line=line,
                )
            yield line, dict(zip(header, row, strict=True))

    return header, rows()


def conllu_texts(path: str | os.PathLike) -> list[str]:
    """The sentences of a CoNLL-U file, from their ``# text =`` comments.

    The file is read with :func:`bert_repro.treebank.read_conllu` (so a malformed file fails
    with the file, line and reason). A sentence without a ``# text`` comment gives its
    syntactic words joined by spaces (multiword tokens and empty nodes are not words).

    Args:
        path: a ``.conllu`` file.

    Returns:
        One text per sentence, in file order (blank ones dropped).

    Raises:
        DataError: the file is missing or is not valid CoNLL-U.
    """
    from .treebank import read_conllu

    texts = []
    for sentence in read_conllu(_check_file(path)):
        text = (sentence.text if sentence.text is not None else " ".join(sentence.words)).strip()
        if text:
            texts.append(text)
    return texts


def csv_texts(path: str | os.PathLike, column: str) -> list[str]:
    """The values of one column of a CSV file with a header row.

    Args:
        path: the file (UTF-8, comma-separated, quoted as the ``csv`` module reads it).
        column: the header of the column holding the texts.

    Returns:
        One text per row, in file order; blank cells are dropped.

    Raises:
        DataError: the file is missing, not UTF-8 or empty, has no such column (the message
            lists the columns it has), or a row does not have the header's number of fields
            (see :func:`csv_rows`).
    """
    path = _check_file(path)
    fields, rows = csv_rows(path)
    if not fields:
        raise DataError("empty CSV file (no header row)", path=path)
    if column not in fields:
        found = ", ".join(repr(c) for c in fields)
        raise DataError(f"no column {column!r}; the columns are {found}", path=path, line=1)
    texts = []
    for _, row in rows:
        text = row[column].strip()
        if text:
            texts.append(text)
    return texts


def plain_texts(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file, one text a line; blank lines are dropped.

    Raises:
        DataError: the file is missing or not UTF-8 (naming the line).
    """
    text = read_utf8(path).replace("\r\n", "\n").replace("\r", "\n")
    return [line.strip() for line in text.split("\n") if line.strip()]


# --------------------------------------------------------------------------------------------
# specs and normalisation
# --------------------------------------------------------------------------------------------


def load_texts(spec: str, limit: int | None = None) -> Iterable[str]:
    """Resolve a command-line ``--texts`` spec to a text source.

    Specs:
        - ``wiki40b:SPLIT`` or ``wiki40b:SPLIT:DATA_DIR`` -- :func:`wiki40b_paragraphs`
          (``wiki40b`` alone means the train split);
        - ``conllu:PATH`` -- :func:`conllu_texts`;
        - ``csv:PATH:COLUMN`` -- :func:`csv_texts`;
        - ``txt:PATH`` -- :func:`plain_texts`;
        - a bare ``PATH`` by extension: ``.conllu`` and ``.txt`` as above, ``.csv`` reads the
          column ``text``.

    Args:
        spec: the spec string.
        limit: keep the first ``limit`` texts only (all when None).

    Returns:
        The texts (a list for files, a lazy iterator for wiki40b).

    Raises:
        DataError: an unknown kind or extension, a missing file or column, a negative
            ``limit``.
    """
    _check_limit(limit)
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in TEXT_SOURCE_KINDS:
        if kind == "wiki40b":
            return wiki40b_paragraphs("train", limit=limit)
        return _load_path(spec, limit)
    if kind == "wiki40b":
        split, _, data_dir = rest.partition(":")
        return wiki40b_paragraphs(split or "train", data_dir or None, limit=limit)
    if kind == "csv":
        path, sep, column = rest.rpartition(":")
        if not sep or not path or not column:
            raise DataError(f"--texts {spec!r}: a CSV source is written csv:PATH:COLUMN")
        return _head(csv_texts(path, column), limit)
    if kind == "conllu":
        return _head(conllu_texts(rest), limit)
    return _head(plain_texts(rest), limit)


def _load_path(spec: str, limit: int | None) -> list[str]:
    suffix = Path(spec).suffix.lower()
    if suffix == ".conllu":
        return _head(conllu_texts(spec), limit)
    if suffix == ".txt":
        return _head(plain_texts(spec), limit)
    if suffix == ".csv":
        return _head(csv_texts(spec, "text"), limit)
    kinds = ", ".join(f"{k}:" for k in TEXT_SOURCE_KINDS)
    raise DataError(
        f"cannot tell what kind of text source {spec!r} is: prefix it with one of {kinds} "
        "(e.g. csv:PATH:COLUMN, wiki40b:train) or use a .conllu/.txt/.csv file"
    )


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise DataError(f"limit={limit}: the number of texts cannot be negative")


def _head(texts: list[str], limit: int | None) -> list[str]:
    return texts if limit is None else texts[:limit]


def _as_str(value) -> str:
    """A text element from tf.data (tensor/bytes), NumPy or Python as ``str``."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, bytes):
        return _decode(value, "a text")
    if isinstance(value, str):
        return value
    raise DataError(f"expected a text (str or bytes), got {type(value).__name__}")


def _texts_of_element(element) -> list[str]:
    if isinstance(element, dict):
        if "text" not in element:
            keys = ", ".join(repr(k) for k in element)
            raise DataError(f"dict examples must have a 'text' field; these have {keys}")
        return parse_wiki40b(_as_str(element["text"]))
    text = _as_str(element)
    if looks_like_wiki40b(text):
        return parse_wiki40b(text)
    text = text.strip()
    return [text] if text else []


def iter_texts(data, limit: int | None = None) -> Iterator[str]:
    """Yield the texts of ``data``, whatever form it comes in, stopping after ``limit``.

    Accepted forms:
        - a wiki40b split (``tf.data.Dataset`` of dicts with ``text``): its paragraphs, via
          :func:`parse_wiki40b` (so ``limit`` counts paragraphs, not articles);
        - a ``tf.data.Dataset`` of strings, a list/tuple/array or any iterable of ``str`` or
          ``bytes``: each element one text; an element that is wiki40b markup (it starts with
          ``_START_ARTICLE_``) gives its paragraphs instead.

    Blank texts are skipped. A bare ``str`` is refused (iterating it would give characters).

    Args:
        data: the texts.
        limit: the number of texts to yield at most (all when None).

    Raises:
        DataError: ``data`` is a single string, or an element is neither text nor a dict with
            ``text``.
    """
    check_not_string(data, "the texts")
    _check_limit(limit)
    elements = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else iter(data)

    def generate():
        for element in elements:
            yield from _texts_of_element(element)

    return itertools.islice(generate(), limit)
