"""The examples of each fine-tuning task: tensorflow-datasets splits or local files, split and
subsampled by seed (the sources are tabulated in :mod:`bert_repro.finetune.tasks`).

Kept apart from :mod:`.tasks` (heads, losses: TensorFlow) so that ``bert-repro finetune`` reads
and checks its data before TensorFlow is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._deprecation import renamed_keyword
from ..errors import ConfigError, check_choice
from ..treebank import read_conllu
from . import agnews, mnli, squad
from .config import TASKS, TaskName
from .sources import holdout_split, subsample


@dataclass(frozen=True)
class TaskData:
    """Training and evaluation examples of one task and a record of where they came from.

    Attributes:
        train: training examples.
        eval: evaluation examples.
        source: description for the run's JSON (origin, splits, sizes, seed).
        test: test examples, evaluated after training too (empty: none).
    """

    train: Sequence[Any]
    eval: Sequence[Any]
    source: dict = field(default_factory=dict)
    test: Sequence[Any] = ()


def _no_tfds_treebank(split: str, *, data_dir=None):
    raise ConfigError(
        "parse has no tensorflow-datasets source: give local CoNLL-U files (e.g. UD "
        "English-EWT en_ewt-ud-train.conllu, --train/--dev)"
    )


# task -> (tfds loader, train split, eval split, file reader, tfds name)
_SOURCES: dict[str, tuple[Callable, str, str, Callable, str]] = {
    "mnli": (
        mnli.load_mnli_tfds,
        mnli.TRAIN_SPLIT,
        mnli.EVAL_SPLIT,
        mnli.read_mnli_tsv,
        mnli.TFDS_NAME,
    ),
    "agnews": (
        agnews.load_agnews_tfds,
        agnews.TRAIN_SPLIT,
        agnews.EVAL_SPLIT,
        agnews.read_agnews_csv,
        agnews.TFDS_NAME,
    ),
    "squad": (
        squad.load_squad_tfds,
        squad.TRAIN_SPLIT,
        squad.EVAL_SPLIT,
        squad.read_squad_json,
        squad.TFDS_NAME,
    ),
    "parse": (_no_tfds_treebank, "train", "dev", read_conllu, ""),
}


def _where(path: str | os.PathLike) -> str:
    return str(Path(path).resolve())


def load_task_data(
    task: TaskName,
    data: str | os.PathLike | None = None,
    *,
    eval_data: str | os.PathLike | None = None,
    test_data: str | os.PathLike | None = None,
    eval_fraction: float = 0.2,
    seed: int = 0,
    train_split: str | None = None,
    eval_split: str | None = None,
    tfds_data_dir: str | os.PathLike | None = None,
    train_limit: int | None = None,
    eval_limit: int | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> TaskData:
    """Training and evaluation examples for ``task`` (sources in the module docstring).

    Args:
        task: ``"mnli"``, ``"squad"``, ``"agnews"`` or ``"parse"`` (local CoNLL-U files only).
        data: a local file; ``None`` reads tensorflow-datasets.
        eval_data: a separate local evaluation file; without it a local ``data`` file is
            split by :func:`holdout_split` (``eval_fraction``, ``seed``).
        test_data: a local test file, read whole and evaluated after training too.
        eval_fraction: share of a single file held out for evaluation.
        seed: seed of the split and of the subsets below.
        train_split, eval_split: tensorflow-datasets splits (defaults per task, see table).
        tfds_data_dir: where tensorflow-datasets keeps prepared datasets.
        train_limit, eval_limit: keep a seeded random subset of at most this many training
            (evaluation) examples (all when None).
        max_train, max_eval: deprecated names of ``train_limit`` and ``eval_limit``.

    Returns:
        The examples and a ``source`` record for the run's JSON.
    """
    train_limit = renamed_keyword("max_train", "train_limit", max_train, train_limit)
    eval_limit = renamed_keyword("max_eval", "eval_limit", max_eval, eval_limit)
    check_choice("task", task, TASKS)
    load_tfds, default_train, default_eval, read_file, tfds_name = _SOURCES[task]
    if data is None:
        if eval_data is not None:
            raise ConfigError("eval_data needs a local training file in data")
        train_split = train_split or default_train
        eval_split = eval_split or default_eval
        train = load_tfds(train_split, data_dir=tfds_data_dir)
        evaluation = load_tfds(eval_split, data_dir=tfds_data_dir)
        source = {"tfds": tfds_name, "train_split": train_split, "eval_split": eval_split}
    elif eval_data is not None:
        train, evaluation = read_file(data), read_file(eval_data)
        source = {"train_file": _where(data), "eval_file": _where(eval_data)}
    else:
        examples = read_file(data)
        train_idx, eval_idx = holdout_split(len(examples), eval_fraction, seed)
        train = [examples[i] for i in train_idx]
        evaluation = [examples[i] for i in eval_idx]
        source = {
            "file": _where(data),
            "split": f"seeded permutation of the {len(examples)} examples (questions for "
            f"SQuAD): {1 - eval_fraction:.0%} train / {eval_fraction:.0%} eval",
            "eval_fraction": eval_fraction,
            "split_seed": seed,
        }
    train = [train[i] for i in subsample(len(train), train_limit, seed)]
    evaluation = [evaluation[i] for i in subsample(len(evaluation), eval_limit, seed + 1)]
    source.update(n_train=len(train), n_eval=len(evaluation))
    if train_limit is not None or eval_limit is not None:
        source.update(train_limit=train_limit, eval_limit=eval_limit, subset_seed=seed)
    test = ()
    if test_data is not None:
        test = read_file(test_data)
        source.update(test_file=_where(test_data), n_test=len(test))
    return TaskData(train=train, eval=evaluation, source=source, test=test)
