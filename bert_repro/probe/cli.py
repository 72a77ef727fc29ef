"""``bert-repro probe train|evaluate|sweep``: thin argument parsing over :mod:`.sweep`.

Examples::

    bert-repro probe sweep --out runs/probe-sweep           # MiniLM, EWT, every layer
    bert-repro probe sweep --model mnli=models/mnli --model bert-base-uncased --layers 0 6 12
    bert-repro probe train --layers 3 --kinds distance --out runs/probe
    bert-repro probe evaluate --probes runs/probe --test my.conllu --out runs/probe-eval
    bert-repro probe edge --limit 2000 --out runs/probe-edge   # edge probes: POS, deprel
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_options import (
    MODEL_HELP,
    add_limit,
    add_out,
    add_run_options,
    add_seed,
    add_too_long,
    command_group,
    extraction_options,
    hidden_alias,
)

EWT_FOLDER = "ud-english-ewt"


def default_treebank(split: str) -> Path | None:
    """The EWT ``split`` file in the shared data folder
    (:func:`bert_repro.data.shared_data_dir`: ``$BERT_REPRO_DATA``, else ``../shared/data``),
    if there is one."""
    from ..data import shared_data_dir
    from ..errors import DataError

    try:
        candidate = shared_data_dir() / EWT_FOLDER / f"en_ewt-ud-{split}.conllu"
    except DataError:
        return None
    return candidate if candidate.is_file() else None


def _need(value, flag: str, split: str):
    from ..errors import ConfigError

    if value is not None:
        return value
    found = default_treebank(split)
    if found is None:
        raise ConfigError(
            f"give {flag} (a CoNLL-U file): the default EWT {split} file was not found in "
            f"the shared data folder's {EWT_FOLDER}/ (set BERT_REPRO_DATA to that folder)"
        )
    return found


def _common(p: argparse.ArgumentParser, *, out: str, kinds: bool = True) -> None:
    p.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="MODEL",
        help=f"{MODEL_HELP}, or LABEL=model; repeat for several models",
    )
    p.add_argument(
        "--models",
        dest="model",
        action="extend",
        nargs="+",
        metavar="MODEL",
        help="several models at once (same as repeating --model)",
    )
    p.add_argument(
        "--layers",
        type=int,
        nargs="+",
        default=None,
        metavar="K",
        help="hidden-state indices, 0 = embedding output, negative from the top (default: all)",
    )
    if kinds:
        p.add_argument(
            "--kinds",
            nargs="+",
            choices=("distance", "depth"),
            default=["distance", "depth"],
            help="probe kinds (default: both)",
        )
    add_out(p, out)
    p.add_argument(
        "--batch-size", type=int, default=20, help="sentences per training step (default 20)"
    )
    add_limit(p, "sentences of each CoNLL-U file")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="word-feature cache folder (default ~/.cache/bert_repro/features)",
    )
    p.add_argument(
        "--cache-dtype",
        choices=("float32", "float16"),
        default="float32",
        help="word features on disk: float16 halves the cache and the memory that reading it "
        "maps; probe metrics move within seed noise (docs/performance.md)",
    )
    add_too_long(p, "sentences")
    hidden_alias(p, "--skip-too-long", "too_long", action="store_const", const="skip")
    add_run_options(p)


def _training(
    p: argparse.ArgumentParser, *, test: bool, rank: bool = True, epochs: int = 40
) -> None:
    p.add_argument("--train", type=Path, default=None, help="training CoNLL-U (default EWT)")
    p.add_argument("--dev", type=Path, default=None, help="dev CoNLL-U (default EWT)")
    if test:
        p.add_argument("--test", type=Path, default=None, help="test CoNLL-U (default EWT)")
    if rank:
        p.add_argument("--rank", type=int, default=128, help="probe rank (default 128)")
    p.add_argument("--epochs", type=int, default=epochs, help="most epochs")
    add_seed(p, "the probes' initialisation and shuffling")
    p.add_argument("--verbose", action="store_true", help="one line per training epoch")


def add_parser(subparsers) -> None:
    """Register ``probe`` and its sub-commands ``train``, ``evaluate``, ``sweep`` and
    ``edge``."""
    sub = command_group(
        subparsers,
        "probe",
        help="structural probes (Hewitt & Manning 2019) on every layer",
        description="Train and evaluate structural probes (distance: UUAS, DSpr; depth: root "
        "accuracy, NSpr) on the hidden states of one or more models.",
    )

    p = sub.add_parser(
        "sweep",
        help="train on --train, select on --dev, report on --test, every layer; figures",
    )
    _common(p, out="runs/probe-sweep")
    _training(p, test=True)
    p.set_defaults(func=run_sweep_command)

    p = sub.add_parser(
        "train", help="train probes (dev metrics only); evaluate them later with `evaluate`"
    )
    _common(p, out="runs/probe")
    _training(p, test=False)
    p.set_defaults(func=run_train_command)

    p = sub.add_parser("evaluate", help="evaluate probes saved by `train`/`sweep` on --test")
    _common(p, out="runs/probe")
    p.add_argument(
        "--probes",
        type=Path,
        default=None,
        help="folder of a train/sweep run holding probes/ (default: --out)",
    )
    p.add_argument("--test", type=Path, default=None, help="CoNLL-U to evaluate on (default EWT)")
    p.set_defaults(func=run_evaluate_command)

    _add_edge(sub)


def _add_edge(sub) -> None:
    from .edge_config import MAX_EPOCHS, MIX_MODES
    from .edge_data import EDGE_TASKS

    p = sub.add_parser(
        "edge",
        help="edge probes (Tenney et al. 2019): POS and dependency relations, every layer "
        "and the scalar mixes; micro F1 and expected layers",
        description="Train edge probes (span projection + two-layer MLP, Tenney et al. 2019) "
        "on every layer's frozen word features and on scalar mixes of the layers: train on "
        "--train, keep the best --dev epoch, report micro F1 on --test, and the expected "
        "layers of the mixes.",
    )
    _common(p, out="runs/probe-edge", kinds=False)
    _training(p, test=True, rank=False, epochs=MAX_EPOCHS)
    p.add_argument(
        "--tasks", nargs="+", choices=EDGE_TASKS, default=list(EDGE_TASKS), help="(default: both)"
    )
    p.add_argument(
        "--mixes",
        choices=MIX_MODES,
        default="cumulative",
        help="scalar-mix probes: cumulative (one per layer l on the mix of 0..l, Tenney's "
        "cumulative scoring; the default), full (the mix of all layers only) or none",
    )
    p.set_defaults(func=run_edge_command)


def _print(args):
    return None if args.quiet or not args.chief else print


def _check_cache_dir(args) -> None:
    """Build the ``--distribute`` strategy (first: before TensorFlow runs anything); on a
    worker that is not the chief, point ``--out`` and ``--cache-dir`` at its own temporary
    folders (only the chief's files are kept). Then check that the feature cache folder can be
    written, before any model is loaded."""
    from ..distribute import is_chief, output_dir_for, strategy_from_args
    from ..io import check_out_dir
    from .data import default_cache_dir

    args.strategy = strategy_from_args(args)
    args.chief = is_chief(args.strategy)
    if not args.chief:
        args.out = output_dir_for(args.out, args.strategy)
        args.cache_dir = output_dir_for(args.cache_dir or "features", args.strategy, what="cache")
    check_out_dir(args.cache_dir or default_cache_dir(), what="feature cache folder")


def _options(args) -> dict:
    """The settings keywords shared by train, sweep and evaluate."""
    return dict(_shared_options(args), kinds=args.kinds)


#: The options every probe action passes on under their own name.
_AS_GIVEN = ("layers", "batch_size", "limit", "too_long", "cache_dtype", "overwrite", "strategy")


def _shared_options(args) -> dict:
    """The settings keywords of every probe action, edge probes included."""
    as_given = {name: getattr(args, name) for name in _AS_GIVEN}
    return dict(as_given, figures=not args.no_figures, **extraction_options(args))


def _train_like(args, test) -> int:
    from .sweep import run_sweep

    _check_cache_dir(args)
    inputs, keywords = _training_inputs(args, test)
    rows = run_sweep(*inputs, **keywords, rank=args.rank, **_options(args))
    if not args.quiet and args.chief:
        print(format_table(rows, split="test" if test is not None else "dev"))
        print(f"results: {args.out / 'results.csv'}")
    return 0


def _training_inputs(args, test) -> tuple[tuple, dict]:
    """What every training action passes: ``(models, train, dev, test, out)`` and the cache,
    log, epochs, seed and verbosity keywords."""
    train, dev = _need(args.train, "--train", "train"), _need(args.dev, "--dev", "dev")
    keywords = dict(cache_dir=args.cache_dir, log=_print(args), epochs=args.epochs)
    return (args.model, train, dev, test, args.out), dict(
        keywords, seed=args.seed, verbose=args.verbose
    )


def run_sweep_command(args) -> int:
    return _train_like(args, _need(args.test, "--test", "test"))


def run_train_command(args) -> int:
    return _train_like(args, None)


def run_evaluate_command(args) -> int:
    from .sweep import evaluate_saved, evaluation_dir

    _check_cache_dir(args)
    rows = evaluate_saved(
        args.model,
        _need(args.test, "--test", "test"),
        args.probes or args.out,
        args.out,
        cache_dir=args.cache_dir,
        log=_print(args),
        **_options(args),
    )
    if not args.quiet and args.chief:
        print(format_table(rows, split="test"))
        print(f"results: {evaluation_dir(args.out, args.probes or args.out) / 'results.csv'}")
    return 0


def run_edge_command(args) -> int:
    from .edge import run_edge_probes

    _check_cache_dir(args)
    inputs, keywords = _training_inputs(args, _need(args.test, "--test", "test"))
    rows = run_edge_probes(
        *inputs, **keywords, tasks=args.tasks, mixes=args.mixes, **_shared_options(args)
    )
    if not args.quiet and args.chief:
        print(format_edge_table(rows))
        print(f"results: {args.out / 'results.csv'}")
    return 0


def format_edge_table(rows) -> str:
    """Plain-text table of edge-probe results: per model and layer, the test (else dev) micro
    F1 of each task side by side; then the mixes with their expected layers."""
    tasks = [t for t in ("pos", "deprel") if any(r["task"] == t for r in rows)]
    split = "test" if all(r.get("f1") is not None for r in rows) else "dev"
    column = "f1" if split == "test" else "dev_f1"
    cumulative = "cumulative_expected_layer" if split == "test" else "dev_cumulative_expected_layer"
    cells: dict[tuple, dict] = {}
    for r in rows:
        key = (
            (r["model"], 0, int(r["layer"]))
            if r["layer"] != "mix"
            else (r["model"], 1, int(r["mix_upto"]))
        )
        cells.setdefault(key, {})[r["task"]] = r
    head = f"{'model':24s} {'layer':>9s} " + " ".join(f"{t:>7s}" for t in tasks)
    lines = [f"({split} micro F1)", head]
    for (model, is_mix, k), by_task in sorted(cells.items()):
        name = f"mix 0..{k}" if is_mix else str(k)
        f1s = [
            f"{by_task[t][column]:7.4f}" if by_task.get(t, {}).get(column) is not None else
            f"{'-':>7s}"
            for t in tasks
        ]  # fmt: skip
        lines.append(f"{model:24s} {name:>9s} " + " ".join(f1s))
    summary = [
        f"{r['model']} {r['task']}: E_s[l] {r['expected_layer']:.2f}"
        + (f", E_Delta[l] {r[cumulative]:.2f}" if r.get(cumulative) is not None else "")
        for r in rows
        if r["layer"] == "mix"
        and r.get("expected_layer") is not None
        and int(r["mix_upto"]) == max(int(q["mix_upto"]) for q in rows if q["layer"] == "mix"
                                      and q["model"] == r["model"] and q["task"] == r["task"])
    ]  # fmt: skip
    if summary:
        lines += ["expected layers (mix of all layers):", *(f"  {s}" for s in summary)]
    return "\n".join(lines)


def format_table(rows, *, split: str = "test") -> str:
    """Plain-text table: one line per (model, layer), distance and depth metrics side by side."""
    prefix = "" if split == "test" else "dev_"
    by_key: dict[tuple[str, int], dict] = {}
    for r in rows:
        entry = by_key.setdefault((r["model"], int(r["layer"])), {})
        for m in ("uuas", "dspr", "root_acc", "nspr"):
            if r.get(prefix + m) is not None:
                entry[m] = r[prefix + m]
    head = f"{'model':24s} {'layer':>5s} {'UUAS':>6s} {'DSpr':>6s} {'root':>6s} {'NSpr':>6s}"
    lines = [f"({split})", head]
    for (model, layer), e in sorted(by_key.items()):
        cells = [
            f"{e[m]:6.3f}" if m in e else f"{'-':>6s}" for m in ("uuas", "dspr", "root_acc", "nspr")
        ]
        lines.append(f"{model:24s} {layer:5d} " + " ".join(cells))
    return "\n".join(lines)
