"""``bert-repro reproduce``: the paper's whole experiment, one command, one report folder."""

from __future__ import annotations

import argparse

from ..cli import add_overwrite_option, add_speed_options
from ..cli_options import add_limit, add_out, add_quiet, add_seed


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="fine-tune, compare layer by layer, probe every layer, write a report",
        description="Run the whole reproduction (what `make demo` runs) into one folder with "
        "report.html, results.json and figures/. A second run reuses finished steps; an "
        "interrupted run continues where it stopped.",
    )
    p.add_argument(
        "--preset",
        choices=["offline", "paper"],
        default="offline",
        help="offline: shipped MiniLM + the shared data, ~15 min on 2 CPU cores (default); "
        "paper: bert-base-uncased, MNLI/SQuAD/wiki40b via tensorflow-datasets (a GPU job)",
    )
    add_out(p, "runs/reproduce")
    p.add_argument(
        "--data-dir",
        default=None,
        help="the shared data folder (default: $BERT_REPRO_DATA, else ../shared/data beside "
        "the working folder or the repository)",
    )
    p.add_argument(
        "--base",
        default=None,
        help="base model (hub name, model folder, or minilm) instead of the preset's",
    )
    add_seed(p, "every step (default: the preset's)", default=None)
    p.add_argument(
        "--probe-epochs", type=int, default=None, help="most probe epochs (default: the preset's)"
    )
    add_limit(
        p, "sentences of each treebank split for the probes (default: the preset's)",
        flag="--probe-limit",
    )  # fmt: skip
    add_quiet(p)
    add_speed_options(p)
    add_overwrite_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..distribute import strategy_from_args
    from ..io import check_out_dir
    from ..models import model_config
    from ..outputs import prepare_out
    from .config import override, preset
    from .runner import run_reproduction

    strategy = strategy_from_args(args)  # before TensorFlow runs anything
    check_out_dir(args.out)
    # Continued step by step (state.json redoes the steps whose settings or inputs changed);
    # another command's results are refused, --overwrite starts afresh.
    prepare_out(
        args.out, command="reproduce", resume=True, overwrite=args.overwrite, markers=["state.json"]
    )
    config = preset(args.preset, data_dir=args.data_dir)
    config = override(
        config,
        base=args.base,
        base_label=None if args.base is None else args.base.rstrip("/").split("/")[-1],
        seed=args.seed,
        probe_epochs=args.probe_epochs,
        probe_limit=args.probe_limit,
        precision=args.precision,
        jit_compile=args.xla,
    )
    model_config(config.base)  # a missing base model fails now, not in the first step
    run_reproduction(
        config, args.out, strategy=strategy, **({"say": _silent} if args.quiet else {})
    )
    return 0


def _silent(*_args, **_kwargs) -> None:
    """``--quiet``: the steps' progress lines go nowhere (errors still reach stderr)."""
