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

from ..batching import DEFAULT_MAX_TOKENS
from ..cli import add_overwrite_option, add_speed_options, seed


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
    p.add_argument(
        "--base",
        default=None,
        help="base model folder or hub name (default: the shipped all-MiniLM-L6-v2)",
    )
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
    p.add_argument("--limit", type=int, default=5000, help="use the first N texts (5000)")
    p.add_argument("--n-samples", type=int, default=None, help=argparse.SUPPRESS)  # old name
    p.add_argument("--out", required=True, type=Path, help="output folder")
    _add_measure_options(p)
    p.add_argument("--no-png", action="store_true", help="write HTML figures only")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_speed_options(p)
    add_overwrite_option(p)
    p.set_defaults(func=run)


def _add_measure_options(p: argparse.ArgumentParser) -> None:
    """What is measured and how the models run: sample, seed, batches, specials, lengths."""
    p.add_argument(
        "--sample-tokens",
        type=int,
        default=2000,
        help="tokens sampled for RSA/CKA (0: cosine only)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the token sample")
    p.add_argument(
        "--max-batch",
        "--batch-size",  # its old name
        dest="max_batch",
        type=int,
        default=None,
        help="at most this many texts a forward pass (default: only --max-tokens limits)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help=f"padded wordpieces a forward pass (default {DEFAULT_MAX_TOKENS})",
    )
    p.add_argument(
        "--include-special",
        action="store_true",
        help="count [CLS] and [SEP] in the averages and the sample",
    )
    p.add_argument(
        "--too-long",
        choices=("error", "skip"),
        default="error",
        help="texts longer than the model accepts: fail (default) or skip and count them",
    )
    p.add_argument("--rsa-method", choices=("pearson", "spearman"), default="pearson")


def run(args: argparse.Namespace) -> int:
    """Handle ``bert-repro compare``."""
    from ..errors import check_positive
    from ..io import check_out_dir
    from ..outputs import prepare_out
    from ..settings import ExtractionSettings
    from ..text import load_texts
    from .comparator import BertComparator, check_names

    check_names([name for name, _ in args.finetuned])
    limit = args.limit if args.n_samples is None else args.n_samples
    check_positive("--limit", limit)
    check_positive("--sample-tokens", args.sample_tokens, minimum=0)
    settings = ExtractionSettings.create(
        max_batch=args.max_batch,
        max_tokens=args.max_tokens,
        progress=not args.quiet,
        jit_compile=bool(args.xla),
        precision=args.precision,
    )
    check_out_dir(args.out)
    prepare_out(args.out, command="compare", overwrite=args.overwrite)
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
        args.out,
        png=False if args.no_png else None,
        base=args.base,
        finetuned=dict(args.finetuned),
        texts=args.texts,
        limit=limit,
        models=comparator.model_entries(),
    )
    if not args.quiet:
        _print_summary(result, args.out)
    return 0


def _print_summary(result, out: Path) -> None:
    print(result.to_frame().round(4).to_string(index=False))
    print(
        f"{result.n_texts} texts, {result.n_tokens} wordpieces, {result.n_sampled_tokens} sampled"
        + (f", {result.n_skipped_too_long} skipped (too long)" if result.n_skipped_too_long else "")
        + f"; written to {out}"
    )
