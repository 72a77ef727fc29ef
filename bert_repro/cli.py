"""The ``bert-repro`` command line: thin argument parsing over the library.

Each area registers its own sub-commands (``add_parser(subparsers)``); handlers import the
heavy modules lazily so that ``--help`` is instant. A :class:`BertReproError` is printed as one
line and the exit status is 2 (an ``OSError``, e.g. a full disk, also gives one line naming the
path, with status 1); ``--debug`` (before or after the sub-command) shows the full traceback
instead. TensorFlow's start-up logging is silenced unless ``--debug`` is given or
``TF_CPP_MIN_LOG_LEVEL`` is set (:mod:`bert_repro._quiet`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# (module, what it adds) — each module defines add_parser(subparsers).
AREAS = (
    ("bert_repro.plot.cli", "compare"),
    ("bert_repro.probe.cli", "probe"),
    ("bert_repro.finetune.cli", "finetune"),
    ("bert_repro.embeddings.cli", "embeddings"),
    ("bert_repro.reproduce.cli", "reproduce"),
    ("bert_repro.ablate.cli", "ablate"),
)


DEBUG_HELP = "show TensorFlow's logging and full tracebacks on errors"
SEED_MAX = 2**32 - 1  # NumPy's legacy seeding (used by Keras' set_random_seed) takes 0..2**32-1


def seed(text: str) -> int:
    """argparse type of every ``--seed``: an int from 0 to :data:`SEED_MAX`."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an int from 0 to {SEED_MAX}, got {text!r}")
    return value


def add_distribute_options(p: argparse.ArgumentParser) -> None:
    """``--distribute``, ``--devices`` and ``--tpu``: how many devices or machines run the
    models (:func:`bert_repro.distribute.make_strategy`; docs/distributed.md)."""
    from .distribute import DISTRIBUTE

    p.add_argument(
        "--distribute",
        choices=DISTRIBUTE,
        default="none",
        help="tf.distribute strategy: mirrored = the GPUs (or --devices logical CPUs) of this "
        "machine; multi-worker = every worker in TF_CONFIG runs this same command, only the "
        "chief writes; tpu = the TPU --tpu (default none)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="replicas of --distribute mirrored (default: all GPUs, else 1 CPU; N>1 on CPU: "
        "N logical CPU devices)",
    )
    p.add_argument("--tpu", default=None, metavar="NAME", help="TPU name or address (tpu)")


def add_speed_options(p: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--xla``: the accelerator settings of the extraction path (and
    ``--distribute``: :func:`add_distribute_options`)."""
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
    add_distribute_options(p)


def _version() -> str:
    from . import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bert-repro",
        description="Look inside BERT: compare fine-tuned models layer by layer, train "
        "structural probes, study word and sentence embeddings.",
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    from .cli_options import DefaultsHelpFormatter

    for command in _all_parsers(parser):
        command.formatter_class = DefaultsHelpFormatter  # every help text shows its default
    for command in _leaf_parsers(parser):
        # SUPPRESS: absent after the sub-command, the top-level value stands.
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
        )
    return parser


def _all_parsers(parser: argparse.ArgumentParser):
    """``parser`` and every parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _all_parsers(child)


def _leaf_parsers(parser: argparse.ArgumentParser):
    """The parsers of the commands that run (those without sub-commands of their own)."""
    for p in _all_parsers(parser):
        if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions):
            yield p


def os_error_message(err: OSError) -> str:
    """``"strerror: filename"`` (and ``-> filename2`` for a rename), else ``str(err)``."""
    if err.strerror and err.filename is not None:
        where = _path(err.filename)
        if err.filename2 is not None:
            where += f" -> {_path(err.filename2)}"
        return f"{err.strerror}: {where}"
    return str(err)


def _path(name) -> str:
    return os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)


def add_overwrite_option(p: argparse.ArgumentParser) -> None:
    """``--overwrite``: replace the results in an existing ``--out`` folder
    (:func:`bert_repro.outputs.prepare_out`)."""
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results already in --out (default: continue them when the command "
        "can and the settings match, else refuse)",
    )


def main(argv: list[str] | None = None) -> int:
    from ._quiet import quiet_tensorflow, wants_quiet
    from .outputs import command_line

    args = build_parser().parse_args(argv)
    recorded = ["bert-repro", *(sys.argv[1:] if argv is None else argv)]
    with quiet_tensorflow(wants_quiet(args.debug)), command_line(recorded):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .errors import BertReproError

    try:
        code = int(args.func(args) or 0)
        _wait_for_the_other_workers()
        return code
    except BertReproError as err:
        if args.debug:
            raise
        print(f"bert-repro {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, permissions, a vanished file: one line, not a traceback
        if args.debug:
            raise
        print(f"bert-repro {args.command}: error: {os_error_message(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bert-repro {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return 130


def _wait_for_the_other_workers() -> None:
    """Under ``--distribute multi-worker``, return only once every worker has finished the
    command (the chief has written its results), so that a script's next command, on any
    worker, finds them (:func:`bert_repro.distribute.barrier`)."""
    from .distribute import barrier, built_strategies

    for strategy in built_strategies():
        barrier(strategy)


if __name__ == "__main__":
    sys.exit(main())
