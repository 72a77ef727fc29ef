"""The command-line options of a fine-tuning run, shared by ``bert-repro finetune`` and
``bert-repro ablate`` (same names, same meaning), and how they become the library's inputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_options import add_seed, add_tfds_data_dir, hidden_alias

#: Hyper-parameter options -> FinetuneConfig fields (None keeps the task's paper default).
HYPER_PARAMETERS = (
    "learning_rate",
    "batch_size",
    "epochs",
    "max_seq_length",
    "doc_stride",
    "warmup_fraction",
    "weight_decay",
    "eval_batch_size",
    "log_every",
    "arc_mlp_size",
    "rel_mlp_size",
    "head_lr_multiplier",
    "max_steps",
    "seed",
    "freeze_layers",
)


def add_data_options(p: argparse.ArgumentParser, *, default: str, training: bool = True) -> None:
    """``--data``/``--train``, ``--eval-data``/``--dev``, the hold-out, tfds and sample options;
    with ``training`` also ``--test``, the tfds splits and ``--limit`` (training examples)."""
    p.add_argument(
        "--data",
        "--train",
        dest="data",
        type=Path,
        default=None,
        help="local training file (agnews: CSV label,title,description; squad: SQuAD JSON; "
        f"mnli: GLUE .tsv; parse: CoNLL-U); default: {default}",
    )
    p.add_argument(
        "--eval-data",
        "--dev",
        dest="eval_data",
        type=Path,
        default=None,
        help="separate local evaluation (dev) file",
    )
    p.add_argument(
        "--eval-fraction",
        type=float,
        default=0.2,
        help="share of --data held out for evaluation when no --eval-data (default 0.2)",
    )
    add_tfds_data_dir(p)
    _sample_option(p, "--eval-limit", "evaluation", old="--max-eval-examples")
    if not training:
        return
    p.add_argument(
        "--test",
        dest="test_data",
        type=Path,
        default=None,
        help="local test file, scored after training as well (test_metrics in finetune.json)",
    )
    p.add_argument("--train-split", default=None, help="tfds training split (default per task)")
    p.add_argument("--eval-split", default=None, help="tfds evaluation split (default per task)")
    _sample_option(p, "--limit", "training", old="--max-train-examples")


def _sample_option(p: argparse.ArgumentParser, flag: str, split: str, *, old: str) -> None:
    """``flag N``: a seeded sample of N ``split`` examples; ``old`` is its earlier name (stored
    in the same place, ``max_<split>_examples`` as the old name says)."""
    dest = old.lstrip("-").replace("-", "_")
    p.add_argument(
        flag,
        dest=dest,
        type=int,
        default=None,
        help=f"use only N {split} examples, a seeded sample (default: all)",
    )
    hidden_alias(p, old, dest, type=int)  # its old name


def add_hyper_parameters(p: argparse.ArgumentParser, *, full: bool = True):
    """The hyper-parameter group (default: the task's ``paper_defaults``); ``full=False``
    keeps the main ones. Returns the group (for options only one command has)."""
    hp = p.add_argument_group("hyper-parameters (default: the task's paper_defaults)")
    hp.add_argument("--learning-rate", type=float, default=None)
    hp.add_argument(
        "--batch-size", type=int, default=None, help="training examples a step, over all devices"
    )
    hp.add_argument("--epochs", type=float, default=None)
    hp.add_argument("--max-steps", type=int, default=None, help="cap on training steps")
    hp.add_argument("--max-seq-length", type=int, default=None)
    hp.add_argument("--eval-batch-size", type=int, default=None)
    add_seed(hp, "training, the split and the samples")
    if full:
        hp.add_argument("--doc-stride", type=int, default=None, help="squad: step between windows")
        hp.add_argument("--warmup-fraction", type=float, default=None)
        hp.add_argument("--weight-decay", type=float, default=None)
        hp.add_argument("--log-every", type=int, default=None, help="steps per logged loss")
        hp.add_argument("--arc-mlp-size", type=int, default=None, help="parse: arc MLP units")
        hp.add_argument("--rel-mlp-size", type=int, default=None, help="parse: relation MLP units")
        hp.add_argument(
            "--head-lr-multiplier",
            type=float,
            default=None,
            help="the head's learning rate as a multiple of --learning-rate (parse default 20)",
        )
    return hp


def config_from_args(task: str, args: argparse.Namespace, **fixed):
    """The run's :class:`~bert_repro.finetune.config.FinetuneConfig`: the task's paper defaults
    with the options given (those a command does not have count as not given)."""
    from .config import paper_defaults

    given = {name: getattr(args, name, None) for name in HYPER_PARAMETERS}
    return paper_defaults(task, **{**given, **fixed})


def data_from_args(task: str, args: argparse.Namespace, **fixed):
    """The run's :class:`~bert_repro.finetune.examples.TaskData`, read as the options say."""
    from .examples import load_task_data

    return load_task_data(
        task,
        args.data,
        eval_data=args.eval_data,
        test_data=getattr(args, "test_data", None),
        eval_fraction=args.eval_fraction,
        seed=args.seed,
        train_split=getattr(args, "train_split", None),
        eval_split=getattr(args, "eval_split", None),
        tfds_data_dir=args.tfds_data_dir,
        **{
            "train_limit": getattr(args, "max_train_examples", None),
            "eval_limit": args.max_eval_examples,
            **fixed,
        },
    )
