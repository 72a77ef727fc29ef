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
from pathlib import Path

from ..cli import seed
from .config import TASKS


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
    p.add_argument(
        "--model", default=None, help="base model folder or hub name (default: shipped MiniLM)"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder, e.g. models/NAME")
    p.add_argument(
        "--data",
        "--train",
        dest="data",
        type=Path,
        default=None,
        help="local training file (agnews: CSV label,title,description; squad: SQuAD JSON; "
        "mnli: GLUE .tsv; parse: CoNLL-U); default: tensorflow-datasets (not for parse)",
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
        "--test",
        dest="test_data",
        type=Path,
        default=None,
        help="local test file, scored after training as well (test_metrics in finetune.json)",
    )
    p.add_argument(
        "--eval-fraction",
        type=float,
        default=0.2,
        help="share of --data held out for evaluation when no --eval-data (default 0.2)",
    )
    p.add_argument("--tfds-data-dir", default=None, help="tensorflow-datasets data_dir")
    p.add_argument("--train-split", default=None, help="tfds training split (default per task)")
    p.add_argument("--eval-split", default=None, help="tfds evaluation split (default per task)")
    p.add_argument("--max-train-examples", type=int, default=None, help="seeded subset size")
    p.add_argument("--max-eval-examples", type=int, default=None, help="seeded subset size")
    p.add_argument("--max-steps", type=int, default=None, help="cap on training steps")
    hp = p.add_argument_group("hyper-parameters (default: the task's paper_defaults)")
    hp.add_argument("--learning-rate", type=float, default=None)
    hp.add_argument("--batch-size", type=int, default=None, help="global batch size")
    hp.add_argument("--epochs", type=float, default=None)
    hp.add_argument("--max-seq-length", type=int, default=None)
    hp.add_argument("--doc-stride", type=int, default=None, help="squad: step between windows")
    hp.add_argument("--warmup-fraction", type=float, default=None)
    hp.add_argument("--weight-decay", type=float, default=None)
    hp.add_argument("--eval-batch-size", type=int, default=None)
    hp.add_argument("--log-every", type=int, default=None, help="steps per logged loss value")
    hp.add_argument("--arc-mlp-size", type=int, default=None, help="parse: arc MLP units")
    hp.add_argument("--rel-mlp-size", type=int, default=None, help="parse: relation MLP units")
    hp.add_argument(
        "--head-lr-multiplier",
        type=float,
        default=None,
        help="the head's learning rate as a multiple of --learning-rate (parse default 20)",
    )
    hp.add_argument("--seed", type=seed, default=0)
    hp.add_argument(
        "--freeze-layers",
        type=int,
        default=None,
        metavar="K",
        help="keep the embeddings and the bottom K layers at their pre-trained values (0)",
    )
    p.add_argument(
        "--strategy",
        choices=("none", "mirrored"),
        default="none",
        help="tf.distribute strategy: mirrored = MirroredStrategy over the visible devices",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..io import check_out_dir
    from ..models import model_config
    from .config import paper_defaults
    from .examples import load_task_data

    check_out_dir(args.out)
    base = model_config(args.model)  # a missing model fails before the data is read
    config = paper_defaults(
        args.task,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        epochs=args.epochs,
        max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride,
        warmup_fraction=args.warmup_fraction,
        weight_decay=args.weight_decay,
        eval_batch_size=args.eval_batch_size,
        log_every=args.log_every,
        arc_mlp_size=args.arc_mlp_size,
        rel_mlp_size=args.rel_mlp_size,
        head_lr_multiplier=args.head_lr_multiplier,
        max_steps=args.max_steps,
        seed=args.seed,
        freeze_layers=args.freeze_layers,
    )
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
    data = load_task_data(
        args.task,
        args.data,
        eval_data=args.eval_data,
        test_data=args.test_data,
        eval_fraction=args.eval_fraction,
        seed=args.seed,
        train_split=args.train_split,
        eval_split=args.eval_split,
        tfds_data_dir=args.tfds_data_dir,
        train_limit=args.max_train_examples,
        eval_limit=args.max_eval_examples,
    )
    from .trainer import finetune  # TensorFlow: only once the options and the data are checked

    strategy = None
    if args.strategy == "mirrored":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
    if not args.quiet:
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
        out_dir=args.out,
        strategy=strategy,
        overwrite=args.overwrite,
        log=None if args.quiet else functools.partial(print, flush=True),
    )
    if not args.quiet:
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
