"""The command-line options the ``bert-repro`` commands share, each defined once.

One concept, one option: the same name, type, default and help in every command that has it
(``tests/test_cli_vocabulary.py`` walks every parser and checks). The vocabulary:

* ``--model`` / ``--base`` / ``--finetuned``: a hub name or model folder; ``minilm`` names the
  shipped all-MiniLM-L6-v2 (the default);
* ``--out`` (output folder), ``--limit`` (use only the first N inputs), ``--seed``;
* ``--quiet`` (print nothing but errors) and ``--verbose`` (more lines);
* ``--too-long {error,skip}`` (an input longer than the model accepts);
* ``--tfds-data-dir`` (tensorflow-datasets' data folder; ``--data-dir`` is only the shared
  data folder of ``reproduce``);
* ``--recipe`` (how layers become a word vector);
* extraction, i.e. a frozen model run over a corpus: ``--max-tokens`` and ``--max-batch`` (the
  forward batches), ``--precision`` and ``--xla``; ``--batch-size`` is only ever the training
  batch.

Old names stay accepted (hidden from the help) so that earlier scripts keep running.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .batching import DEFAULT_MAX_TOKENS
from .cli import add_overwrite_option, add_speed_options, seed
from .models import DEFAULT_MODEL_NAME
from .settings import TOO_LONG

QUIET_HELP = "print nothing but errors"
MODEL_HELP = (
    f"hub name or model folder (default: {DEFAULT_MODEL_NAME}, the shipped all-MiniLM-L6-v2)"
)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help texts end with their default (``(default: X)``) unless they already state one;
    flags and options without a default say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
            or not action.option_strings
            or action.help == argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)".strip()


def command_group(subparsers, name: str, *, help: str, description: str, metavar="ACTION"):
    """A command with sub-commands of its own (``probe``, ``embeddings``, ``ablate``): returns
    the sub-parsers to add them to; the chosen one is ``args.<name>_command``."""
    group = subparsers.add_parser(name, help=help, description=description)
    return group.add_subparsers(dest=f"{name}_command", metavar=metavar, required=True)


def hidden_alias(p, flag: str, dest: str, **kwargs) -> None:
    """An old option name: accepted, stored in ``dest``, not shown in the help."""
    p.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def add_model(p, flag: str = "--model", *, what: str = "") -> None:
    """``--model`` (or ``--base``): one model, the shipped MiniLM by default."""
    p.add_argument(flag, default=None, help=f"{what}{MODEL_HELP}")


def add_out(p, default: str | None = None) -> None:
    """``--out``: the output folder (required when there is no default)."""
    if default is None:
        p.add_argument("--out", type=Path, required=True, help="output folder")
    else:
        p.add_argument("--out", type=Path, default=Path(default), help="output folder")


def add_limit(p, what: str, *, default: int | None = None, flag: str = "--limit", **kw) -> None:
    """``--limit N``: use only the first N of ``what`` (default: all)."""
    extra = "" if default is not None or "default" in what else " (default: all)"
    p.add_argument(
        flag, type=int, default=default, help=f"use only the first N {what}{extra}", **kw
    )


def add_seed(p, what: str, *, default: int | None = 0) -> None:
    """``--seed``: an int from 0 to 2**32-1; ``what`` says what it seeds."""
    p.add_argument("--seed", type=seed, default=default, help=f"seed of {what}")


def add_quiet(p) -> None:
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)


def add_too_long(p, what: str) -> None:
    """``--too-long {error,skip}``: what to do with an input longer than the model accepts."""
    p.add_argument(
        "--too-long",
        choices=TOO_LONG,
        default="error",
        help=f"{what} longer than the model accepts: fail (error) or leave out and count them "
        "(skip)",
    )


def add_no_figures(p) -> None:
    """``--no-figures``: results.json and results.csv only (figures are optional everywhere)."""
    p.add_argument(
        "--no-figures", action="store_true", help="write no figures (results and tables only)"
    )


def add_tfds_data_dir(p) -> None:
    p.add_argument(
        "--tfds-data-dir",
        default=None,
        help="tensorflow-datasets data folder (default: tfds' own, ~/tensorflow_datasets)",
    )


def add_extraction_options(p) -> None:
    """How a frozen model runs over a corpus: ``--max-tokens``, ``--max-batch`` (the forward
    batches; results never depend on them), ``--precision`` and ``--xla``."""
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help=f"padded wordpieces a forward pass (default {DEFAULT_MAX_TOKENS})",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=None,
        help="at most this many texts a forward pass (default: only --max-tokens limits)",
    )
    add_speed_options(p)


def add_run_options(p, *, old_batch_size: bool = False) -> None:
    """What every command that runs a frozen model over a corpus and writes results has:
    ``--quiet``, ``--no-figures``, the extraction options (:func:`add_extraction_options`)
    and ``--overwrite``; ``old_batch_size``: also the hidden ``--batch-size``, the old name
    of ``--max-batch`` (in commands whose ``--batch-size`` never was a training batch)."""
    add_quiet(p)
    add_no_figures(p)
    add_extraction_options(p)
    if old_batch_size:
        hidden_alias(p, "--batch-size", "max_batch", type=int)
    add_overwrite_option(p)


def extraction_settings(args: argparse.Namespace, **fields):
    """The :class:`~bert_repro.settings.ExtractionSettings` of a command's extraction options
    (progress bars unless ``--quiet``); ``fields`` add or replace settings."""
    from .settings import ExtractionSettings

    return ExtractionSettings.create(**{**extraction_options(args), **fields})


def extraction_options(args: argparse.Namespace) -> dict:
    """The extraction options as :class:`~bert_repro.settings.ExtractionSettings` keywords
    (``None``: not given, the default stands)."""
    return {
        "max_tokens": args.max_tokens,
        "max_batch": args.max_batch,
        "precision": args.precision,
        "jit_compile": None if args.xla is None else bool(args.xla),
        # a worker that is not the chief (--distribute multi-worker) prints nothing
        "progress": not getattr(args, "quiet", False) and getattr(args, "chief", True),
    }
