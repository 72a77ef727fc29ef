"""``bert-repro ablate restore|freeze``: thin argument parsing over :mod:`bert_repro.ablate`.

Examples::

    bert-repro ablate restore models/minilm-agnews --out runs/ablate-restore
    bert-repro ablate restore models/mnli models/squad --base bert-base-uncased --ks 0 4 8 12
    bert-repro ablate freeze agnews --data ../shared/data/ag-news/test.csv --ks 0 2 4 \\
        --max-steps 200 --out runs/ablate-freeze

Both write ``results.json``, ``results.csv`` and one figure per metric
(``figures/<mode>_<metric>.html``) into ``--out`` (a non-empty one is refused unless
``--overwrite`` is given). Data options are those of ``bert-repro finetune`` and read through the same
:func:`bert_repro.finetune.load_task_data`; without ``--data``, ``restore`` reloads the
evaluation examples recorded in each model's ``finetune.json``.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from ..cli import add_distribute_options, add_overwrite_option
from ..cli_options import (
    add_model,
    add_no_figures,
    add_out,
    add_quiet,
    add_seed,
    command_group,
)
from ..encoder_parts import DIRECTIONS
from ..finetune.config import TASKS
from ..finetune.options import (
    add_data_options,
    add_hyper_parameters,
    config_from_args,
    data_from_args,
)


def _common(p: argparse.ArgumentParser, *, out: str, ks: str) -> None:
    p.add_argument(
        "--ks",
        type=int,
        nargs="+",
        default=None,
        metavar="K",
        help=f"numbers of layers, each from 0 to the model's L (default: {ks})",
    )
    add_out(p, out)
    add_quiet(p)
    add_no_figures(p)


def add_parser(subparsers) -> None:
    """Register ``ablate`` and its sub-commands ``restore`` and ``freeze``."""
    sub = command_group(
        subparsers,
        "ablate",
        help="layer ablations: restore base weights into / freeze the bottom or top k layers",
        description="Which layers' changes does a fine-tuned task need (restore), and how far "
        "up must fine-tuning reach (freeze)? Merchant et al. 2020.",
    )

    p = sub.add_parser(
        "restore",
        help="put base weights into the bottom / top k layers of fine-tuned models, score them",
        description="For k = 0..L: replace the embeddings + bottom k layers (bottom) or the top "
        "k layers (top) of each fine-tuned model with the base model's weights, keep its head "
        "and pooler, and evaluate the task metric. k = 0 is the fine-tuned model itself.",
    )
    p.add_argument("models", nargs="+", type=Path, help="folders written by `bert-repro finetune`")
    p.add_argument(
        "--base", default=None, help="base model (default: the one in each finetune.json)"
    )
    p.add_argument(
        "--directions",
        nargs="+",
        choices=DIRECTIONS,
        default=list(DIRECTIONS),
        help="which end to restore from (default: both)",
    )
    add_data_options(p, default="the evaluation examples recorded in finetune.json", training=False)
    add_seed(p, "the split and the samples")
    p.add_argument(
        "--eval-batch-size",
        type=int,
        default=None,
        help="examples an evaluation step (default: the task's)",
    )
    add_overwrite_option(p)
    _common(p, out="runs/ablate-restore", ks="0..L")
    add_distribute_options(p)
    p.set_defaults(func=run_restore)

    p = sub.add_parser(
        "freeze",
        help="fine-tune with the embeddings and bottom k layers frozen, for several k",
        description="Fine-tune once per k with the embeddings and layers 0..k-1 frozen (k = 0: "
        "nothing frozen) and evaluate; hyper-parameters default to the task's paper_defaults.",
    )
    p.add_argument("task", choices=TASKS, help="the task")
    add_model(p, what="model to fine-tune: ")
    add_data_options(p, default="tensorflow-datasets")
    add_hyper_parameters(p, full=False)
    p.add_argument(
        "--save-models", action="store_true", help="keep each model in <out>/models/freeze-<k>"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results (and saved models) already in --out",
    )
    _common(p, out="runs/ablate-freeze", ks="0 2 4")
    add_distribute_options(p)
    p.set_defaults(func=run_freeze)


def _prepare(args, out=None) -> None:
    """The --out rule (:func:`bert_repro.outputs.prepare_out`): an ablation cannot resume.
    ``out``: where this process writes (another worker's temporary folder under
    ``--distribute multi-worker``; default ``--out``)."""
    from ..io import check_out_dir
    from ..outputs import prepare_out

    out = args.out if out is None else out
    check_out_dir(out)
    prepare_out(out, command=f"ablate {args.ablate_command}", overwrite=args.overwrite)


def _finish(result, args, out=None) -> int:
    written = result.save(
        args.out if out is None else out,
        figures=not args.no_figures,
        models=result.model_entries(),
    )
    if not args.quiet and out in (None, args.out):
        print(format_table(result.rows))
        print(f"results: {', '.join(str(p) for p in written)}")
    return 0


def run_restore(args) -> int:
    from ..distribute import is_chief, output_dir_for, strategy_from_args
    from ..errors import ConfigError
    from ..finetune.trainer import RECORD_FILE
    from ..io import read_json

    strategy = strategy_from_args(args)  # before TensorFlow runs anything
    out = output_dir_for(args.out, strategy)  # another worker's: its own temporary folder
    _prepare(args, out)
    tasks = {}
    for folder in args.models:  # every folder checked before any model is loaded
        if not (folder / RECORD_FILE).is_file():
            raise ConfigError(f"{folder} has no {RECORD_FILE}: not a folder written by finetune")
        tasks[folder] = read_json(folder / RECORD_FILE)["settings"]["task"]
    if args.data is None and (args.eval_data is not None or args.max_eval_examples is not None):
        raise ConfigError(
            "--eval-data and --eval-limit need --data (without it the evaluation "
            "examples are the ones recorded in finetune.json)"
        )
    data = {t: data_from_args(t, args).eval for t in set(tasks.values())} if args.data else {}
    from .restore import restore_layers
    from .result import AblationResult

    log = None if args.quiet or not is_chief(strategy) else functools.partial(print, flush=True)
    results = [
        restore_layers(
            folder,
            args.base,
            data.get(task),
            ks=args.ks,
            directions=args.directions,
            eval_batch_size=args.eval_batch_size,
            tfds_data_dir=args.tfds_data_dir,
            log=log,
            strategy=strategy,
        )
        for folder, task in tasks.items()
    ]
    result = results[0] if len(results) == 1 else AblationResult.combine(results)
    return _finish(result, args, out)


def run_freeze(args) -> int:
    from ..distribute import is_chief, output_dir_for, strategy_from_args

    strategy = strategy_from_args(args)  # before TensorFlow runs anything
    out = output_dir_for(args.out, strategy)  # another worker's: its own temporary folder
    _prepare(args, out)
    config = config_from_args(args.task, args)
    data = data_from_args(args.task, args)
    from .freeze import DEFAULT_KS, freeze_sweep

    result = freeze_sweep(
        args.task,
        args.model,
        data=data,
        ks=args.ks if args.ks is not None else DEFAULT_KS,
        config=config,
        models_dir=out / "models" if args.save_models else None,
        overwrite=args.overwrite,
        log=None if args.quiet or not is_chief(strategy) else functools.partial(print, flush=True),
        strategy=strategy,
    )
    return _finish(result, args, out)


def format_table(rows) -> str:
    """Plain-text table: one line per row (model, task, mode, direction, k, metric, value)."""
    head = (
        f"{'model':24s} {'task':8s} {'mode':8s} {'dir':6s} {'k':>3s} {'metric':12s} {'value':>8s}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['model']:24s} {r['task']:8s} {r['mode']:8s} {r['direction']:6s} {r['k']:3d} "
            f"{r['metric']:12s} {r['value']:8.4f}"
        )
    return "\n".join(lines)
