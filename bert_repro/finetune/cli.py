"""``bert-repro finetune {mnli,squad,agnews,parse}``: fine-tune a BERT and save it to ``--out``.

Defaults are the paper's (standard BERT) hyper-parameters per task
(:mod:`bert_repro.finetune.config`); any of them can be overridden. Without ``--data`` the
task's tensorflow-datasets splits are used (network needed the first time); with ``--data`` a
local file is read and, without ``--eval-data``, split 80/20 by a seeded permutation.
``parse`` reads CoNLL-U treebanks only: ``bert-repro finetune parse --train en_ewt-ud-train.conllu
--dev en_ewt-ud-dev.conllu --test en_ewt-ud-test.conllu --out models/NAME`` (``--train`` and
``--dev`` are other names of ``--data`` and ``--eval-data``; ``--test`` is scored after
training, for any task, and saved as ``test_metrics`` in ``finetune.json``).
Heavy modules are imported inside the handler only, TensorFlow after the options and the data
have been checked.
"""

from __future__ import annotations

import argparse
import functools
import json

from ..cli import add_distribute_options
from ..cli_options import add_model, add_out, add_quiet
from .config import TASKS
from .options import add_data_options, add_hyper_parameters, config_from_args, data_from_args


def add_parser(subparsers) -> None:
    """Register ``finetune`` on the main ``bert-repro`` parser."""
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a BERT on MNLI, SQuAD v1.1, AG News or dependency parsing (CoNLL-U) "
        "and save it as a model folder",
        description="Fine-tune a BERT with Keras fit (paper hyper-parameters by default), report "
        "the task metric on the evaluation split, and save the encoder, tokenizer, head and "
        "finetune.json to --out (load the encoder back with bert_repro.models.load_bert).",
    )
    p.add_argument("task", choices=TASKS, help="the task")
    add_model(p, what="model to fine-tune: ")
    add_out(p)
    add_data_options(p, default="tensorflow-datasets (not for parse)")
    hp = add_hyper_parameters(p)
    hp.add_argument(
        "--freeze-layers",
        type=int,
        default=None,
        metavar="K",
        help="keep the embeddings and the bottom K layers at their pre-trained values (default 0)",
    )
    add_distribute_options(p)
    p.add_argument(  # the old name of --distribute
        "--strategy",
        dest="distribute",
        choices=("none", "mirrored"),
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..distribute import is_chief, output_dir_for, strategy_from_args
    from ..errors import ConfigError
    from ..io import check_out_dir
    from ..models import model_config
    from ..outputs import prepare_out

    strategy = strategy_from_args(args)  # before TensorFlow runs anything
    quiet = args.quiet or not is_chief(strategy)
    out = output_dir_for(args.out, strategy)  # another worker's: its own temporary folder
    check_out_dir(out)
    if not args.overwrite:  # with it, the new model replaces the old one once it is saved
        prepare_out(out, command="finetune")
    base = model_config(args.model)  # a missing model fails before the data is read
    config = config_from_args(args.task, args)
    if config.max_seq_length > base.max_position_embeddings:
        raise ConfigError(
            f"--max-seq-length {config.max_seq_length} exceeds the model's "
            f"max_position_embeddings={base.max_position_embeddings}"
        )
    if config.freeze_layers > base.num_hidden_layers:
        raise ConfigError(
            f"--freeze-layers {config.freeze_layers} exceeds the model's "
            f"{base.num_hidden_layers} layers"
        )
    data = data_from_args(args.task, args)
    from .trainer import finetune  # TensorFlow: only once the options and the data are checked

    if not quiet:
        print(
            f"fine-tuning on {args.task}: {len(data.train)} training / {len(data.eval)} "
            f"evaluation examples; {json.dumps(config.to_dict())}",
            flush=True,
        )
    result = finetune(
        args.task,
        args.model,
        data=data,
        config=config,
        out_dir=out,
        strategy=strategy,
        overwrite=args.overwrite,
        log=None if quiet else functools.partial(print, flush=True),
    )
    if not quiet:
        test = ""
        if result.test_metrics is not None:
            test = f"; test: {json.dumps(_rounded(result.test_metrics))}"
        print(
            f"{args.task}: {result.steps} steps in {result.train_seconds:.0f} s; "
            f"evaluation: {json.dumps(_rounded(result.metrics))}{test}; saved to {result.out_dir}"
        )
    return 0


def _rounded(metrics: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
