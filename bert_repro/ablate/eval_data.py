"""The evaluation examples a fine-tuned model was scored on, rebuilt from its ``finetune.json``.

``bert-repro finetune`` reads its data with :func:`bert_repro.finetune.load_task_data` and
records where the examples came from (``settings.data``: the file and its seeded 80/20 split, or
the two files, or the tensorflow-datasets splits, and any seeded subset). Calling
``load_task_data`` again with the recorded arguments gives the same evaluation examples, so the
unablated model (``k = 0``) scores exactly the metric the fine-tuning run reported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import DataError
from ..finetune.examples import TaskData, load_task_data


def recorded_eval_data(
    record: Mapping, *, tfds_data_dir: str | os.PathLike | None = None
) -> TaskData:
    """``load_task_data`` with the arguments recorded in ``record`` (a ``finetune.json``).

    Only ``.eval`` is meant to be used: for tensorflow-datasets the evaluation split also stands
    in for the training split (the large training split is not read).

    Args:
        record: the fine-tuning run's record (:func:`bert_repro.finetune.load_finetuned`).
        tfds_data_dir: where tensorflow-datasets keeps prepared datasets (not recorded).

    Raises:
        DataError: a recorded file is gone, or the examples rebuilt differ in number from the
            recorded ones (the file changed); pass the examples yourself then.
    """
    settings = record["settings"]
    task, src = settings["task"], settings["data"]
    limits = {"train_limit": src.get("train_limit"), "eval_limit": src.get("eval_limit")}
    for key in ("file", "train_file", "eval_file"):
        if key in src and not Path(src[key]).is_file():
            raise DataError(
                f"the {key.replace('_', ' ')} recorded in finetune.json, {src[key]}, is not "
                "there: give the evaluation data (examples= / --data)"
            )
    if "file" in src:
        data = load_task_data(
            task,
            src["file"],
            eval_fraction=src["eval_fraction"],
            seed=src["split_seed"],
            **limits,
        )
    elif "train_file" in src:
        data = load_task_data(
            task,
            src["train_file"],
            eval_data=src["eval_file"],
            seed=src.get("subset_seed", 0),
            **limits,
        )
    elif "tfds" in src:
        data = load_task_data(
            task,
            train_split=src["eval_split"],  # stands in: only the evaluation split is used
            eval_split=src["eval_split"],
            seed=src.get("subset_seed", 0),
            tfds_data_dir=tfds_data_dir,
            eval_limit=src.get("eval_limit"),
        )
    else:
        raise DataError(
            f"finetune.json records no data source this can reload ({sorted(src)}): give the "
            "evaluation data (examples= / --data)"
        )
    if "n_eval" in src and len(data.eval) != src["n_eval"]:
        raise DataError(
            f"the recorded data now gives {len(data.eval)} evaluation examples, the fine-tuning "
            f"run had {src['n_eval']}: the data changed; give the evaluation data yourself"
        )
    return data
