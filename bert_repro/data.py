"""Where data comes from: the shared data folder and tensorflow-datasets.

Two things every part of the package (the reproduction, the probes' defaults, the notebooks,
the tests, the fine-tuning and embeddings loaders) needs and should find the same way:

- :func:`shared_data_dir`: the folder of the real data shipped beside the repository
  (``ud-english-ewt/``, ``ag-news/``, ``squad-sample/``, ``wordnet/``): an explicit argument,
  else ``$BERT_REPRO_DATA``, else ``../shared/data`` beside the working folder or the
  repository;
- :func:`load_tfds`: a tensorflow-datasets split, with one clear error when it is not
  prepared on this (offline) machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .errors import DataError

#: The environment variable naming the shared data folder.
DATA_ENV = "BERT_REPRO_DATA"
#: What the shared data folder holds; a folder with none of these is not it.
SHARED_DATA_CONTENTS: tuple[str, ...] = ("ud-english-ewt", "ag-news", "squad-sample", "wordnet")
_REPOSITORY = Path(__file__).resolve().parents[1]


def _holds_shared_data(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_dir() for name in SHARED_DATA_CONTENTS)


def _why_not(folder: Path) -> str:
    if not folder.exists():
        return "does not exist"
    if not folder.is_dir():
        return "is not a folder"
    return f"holds none of {', '.join(f'{n}/' for n in SHARED_DATA_CONTENTS)}"


def default_data_candidates() -> list[Path]:
    """Where :func:`shared_data_dir` looks without an argument or ``$BERT_REPRO_DATA``:
    ``shared/data`` in the working folder's parent, then in the repository's parent."""
    found: list[Path] = []
    for root in (Path.cwd().resolve().parent, _REPOSITORY.parent):
        candidate = root / "shared" / "data"
        if candidate not in found:
            found.append(candidate)
    return found


def shared_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The shared data folder (EWT, AG News test, SQuAD sample, WordNet definitions).

    Looked for, in this order (the first given wins; a given folder that is wrong is an
    error, never silently replaced by another):

    1. ``data_dir``, when given (the CLI's ``--data-dir``);
    2. ``$BERT_REPRO_DATA``, when set;
    3. ``../shared/data`` beside the working folder, then beside the repository holding this
       package (so a notebook run from ``notebooks/`` and a command run from the repository
       root find the same folder).

    A folder counts when it holds at least one of :data:`SHARED_DATA_CONTENTS`.

    Returns:
        The folder, resolved to an absolute path.

    Raises:
        DataError: the given folder (or ``$BERT_REPRO_DATA``) is missing or is not the shared
            data folder, or none of the default places holds it; the message lists where it
            looked and how to point the package at the folder.
    """
    fix = (
        f"pass the folder that holds {', '.join(f'{n}/' for n in SHARED_DATA_CONTENTS)} "
        f"(data_dir=..., CLI --data-dir) or set {DATA_ENV} to it"
    )
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not _holds_shared_data(folder):
            raise DataError(f"no shared data folder at {folder}: it {_why_not(folder)}; {fix}")
        return folder.resolve()
    from_env = os.environ.get(DATA_ENV, "").strip()
    if from_env:
        folder = Path(from_env).expanduser()
        if not _holds_shared_data(folder):
            raise DataError(
                f"no shared data folder at {folder} (from {DATA_ENV}): it {_why_not(folder)}; {fix}"
            )
        return folder.resolve()
    candidates = default_data_candidates()
    for folder in candidates:
        if _holds_shared_data(folder):
            return folder.resolve()
    looked = "; ".join(f"{c} ({_why_not(c)})" for c in candidates)
    raise DataError(
        f"no shared data folder found ({DATA_ENV} is not set; looked in {looked}); {fix}"
    )


def load_tfds(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    hint: str = "",
):
    """A tensorflow-datasets split as a ``tf.data.Dataset`` of dicts, files in order.

    The one place the package calls ``tfds.load`` (wiki40b paragraphs, MNLI, SQuAD, AG News),
    so that every loader fails the same clear way on a machine that cannot reach the dataset
    hosts. Tests use ``tfds.testing.mock_data``.

    Args:
        name: the tfds name, e.g. ``"ag_news_subset"``, ``"wiki40b/en"``, ``"squad/v1.1"``.
        split: a tfds split spec, e.g. ``"train"``, ``"test[:10%]"``.
        data_dir: where the prepared dataset lies (tfds' default folder when None).
        download: let tfds download and prepare the dataset when it is missing (needs the
            network; wiki40b is built with Apache Beam and is better prepared elsewhere).
        hint: appended to the error message, e.g. the CLI option that takes ``data_dir``.

    Raises:
        DataError: the dataset or split cannot be loaded (not prepared in ``data_dir`` and no
            network, an unknown split, ...): the message names it, the cause and the fix.
    """
    import tensorflow_datasets as tfds

    try:
        return tfds.load(
            name,
            split=split,
            data_dir=None if data_dir is None else os.fspath(data_dir),
            download=download,
            shuffle_files=False,
        )
    except Exception as err:  # tfds raises many types (network, missing files, bad split)
        raise DataError(
            f"tensorflow-datasets {name!r} split {split!r} is not available here "
            f"({type(err).__name__}: {err}). Prepare it once on a machine with internet "
            f"(`tfds.load({name!r}, data_dir=DIR)`), copy DIR here and pass it as data_dir"
            + (f" ({hint})" if hint else "")
            + ", or use a local file",
            path=data_dir,
        ) from err


def tfds_records(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    download: bool = True,
) -> Iterator[dict]:
    """The first ``limit`` (default all) examples of a tfds split as NumPy dicts (strings as
    ``bytes``); see :func:`load_tfds`. The dataset is opened before the first record is asked
    for, so a missing dataset fails here."""
    import tensorflow_datasets as tfds

    ds = load_tfds(name, split, data_dir=data_dir, download=download)
    if limit is not None:
        ds = ds.take(int(limit))
    return iter(tfds.as_numpy(ds))


def as_text(value) -> str:
    """A tfds string field (UTF-8 ``bytes``) as ``str``."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
