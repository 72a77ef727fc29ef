"""``bert-repro compare``: base vs fine-tuned models, layer by layer, written to a folder.

Example::

    bert-repro compare --base models/bert-base --finetuned mnli=models/mnli \\
        --finetuned squad=models/squad --texts wiki40b:train:/data/tfds --limit 5000 \\
        --out runs/compare

writes ``results.json`` (``meta``: command line, settings, versions, models; ``rows``: one per
model and layer; ``summary``: the per-layer curves and counts), ``results.csv`` (the rows) and
the figures ``figures/cosine``, ``rsa``, ``cka`` and ``overview`` (``.html``; ``.png`` where a
browser engine is available). An existing non-empty ``--out`` is refused unless
``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_options import (
    add_limit,
    add_model,
    add_out,
    add_run_options,
    add_seed,
    add_too_long,
    extraction_settings,
    hidden_alias,
)


def _finetuned_spec(value: str) -> tuple[str, str]:
    """``NAME=PATH`` (or a bare ``PATH``, named after its folder)."""
    name, sep, path = value.partition("=")
    if not sep:
        name, path = Path(value).name or value, value
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, path


def add_parser(subparsers) -> None:
    """Register ``compare`` on the ``bert-repro`` sub-command parser."""
    p = subparsers.add_parser(
        "compare",
        help="layer-wise similarity (cosine, RSA, CKA) of a base BERT and fine-tuned copies",
        description="Run a base BERT and fine-tuned copies over the same texts in one pass and "
        "write per-layer cosine similarity, RSA and linear CKA (JSON, CSV, figures).",
    )
    add_model(p, "--base", what="base model: ")
    p.add_argument(
        "--finetuned",
        metavar="NAME=PATH",
        type=_finetuned_spec,
        action="append",
        required=True,
        help="a fine-tuned model to compare with the base (repeatable)",
    )
    p.add_argument(
        "--texts",
        required=True,
        metavar="SOURCE",
        help="wiki40b:SPLIT[:DATA_DIR], conllu:PATH, csv:PATH:COLUMN, txt:PATH, or a "
        ".conllu/.txt/.csv path",
    )
    add_limit(p, "texts", default=5000)
    hidden_alias(p, "--n-samples", "limit", type=int)  # its old name
    add_out(p)
    _add_measure_options(p)
    p.add_argument("--no-png", action="store_true", help="write HTML figures only")
    add_run_options(p, old_batch_size=True)
    p.set_defaults(func=run)


def _add_measure_options(p: argparse.ArgumentParser) -> None:
    """What is measured: the token sample and its seed, specials, long texts, RSA's method."""
    p.add_argument(
        "--sample-tokens",
        type=int,
        default=2000,
        help="tokens sampled for RSA/CKA (0: cosine only)",
    )
    add_seed(p, "the token sample")
    p.add_argument(
        "--include-special",
        action="store_true",
        help="count [CLS] and [SEP] in the averages and the sample",
    )
    add_too_long(p, "texts")
    p.add_argument(
        "--rsa-method",
        choices=("pearson", "spearman"),
        default="pearson",
        help="correlation of the two models' dissimilarity matrices in RSA",
    )


def run(args: argparse.Namespace) -> int:
    """Handle ``bert-repro compare``."""
    from ..distribute import is_chief, output_dir_for, strategy_from_args
    from ..errors import check_positive
    from ..io import check_out_dir
    from ..outputs import prepare_out
    from ..text import load_texts
    from .comparator import BertComparator, check_names

    check_names([name for name, _ in args.finetuned])
    limit = args.limit
    check_positive("--limit", limit)
    check_positive("--sample-tokens", args.sample_tokens, minimum=0)
    strategy = strategy_from_args(args)  # before TensorFlow runs anything
    quiet = args.quiet or not is_chief(strategy)
    settings = extraction_settings(args, progress=not quiet, strategy=strategy)
    out = output_dir_for(args.out, strategy)  # another worker's: its own temporary folder
    check_out_dir(out)
    prepare_out(out, command="compare", overwrite=args.overwrite)
    texts = load_texts(args.texts, limit)  # a bad source fails before loading models
    comparator = BertComparator.load(args.base, dict(args.finetuned), settings=settings)
    result = comparator.compare(
        texts,
        limit,
        include_special=args.include_special,
        sample_tokens=args.sample_tokens,
        seed=args.seed,
        rsa_method=args.rsa_method,
        too_long=args.too_long,
    )
    result.save(
        out,
        png=False if args.no_png else None,
        figures=not args.no_figures,
        base=args.base,
        finetuned=dict(args.finetuned),
        texts=args.texts,
        limit=limit,
        models=comparator.model_entries(),
    )
    if not quiet:
        _print_summary(result, out)
    return 0


def _print_summary(result, out: Path) -> None:
    print(result.to_frame().round(4).to_string(index=False))
    print(
        f"{result.n_texts} texts, {result.n_tokens} wordpieces, {result.n_sampled_tokens} sampled"
        + (f", {result.n_skipped_too_long} skipped (too long)" if result.n_skipped_too_long else "")
        + f"; written to {out}"
    )
