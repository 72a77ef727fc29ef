"""The ``bert-repro`` command line: thin argument parsing over the library.

Each area registers its own sub-commands (``add_parser(subparsers)``); handlers import the
heavy modules lazily so that ``--help`` is instant. A :class:`BertReproError` is printed as one
line and the exit status is 2 (an ``OSError``, e.g. a full disk, also gives one line, with
status 1); ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, what it adds) — each module defines add_parser(subparsers).
AREAS = (
    ("bert_repro.plot.cli", "compare"),
    ("bert_repro.probe.cli", "probe"),
    ("bert_repro.finetune.cli", "finetune"),
    ("bert_repro.embeddings.cli", "embeddings"),
    ("bert_repro.reproduce.cli", "reproduce"),
)


def add_speed_options(p: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--xla``: the accelerator settings of the extraction path."""
    from .models import PRECISIONS

    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="compute precision of the BERT forward passes (default float32); the mixed "
        "ones are for GPUs/TPUs (README, Speed)",
    )
    p.add_argument(
        "--xla",
        action="store_true",
        default=None,
        help="XLA-compile the forward passes (a few padded shapes; worth it on GPUs)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bert-repro",
        description="Look inside BERT: compare fine-tuned models layer by layer, train "
        "structural probes, study word and sentence embeddings.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module, _ in AREAS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name and module.startswith(err.name):
                continue  # that area is not built (yet)
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import BertReproError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BertReproError as err:
        if args.debug:
            raise
        print(f"bert-repro {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, permissions, a vanished file: one line, not a traceback
        if args.debug:
            raise
        print(f"bert-repro {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bert-repro {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
