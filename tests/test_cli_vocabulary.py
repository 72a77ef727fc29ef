"""One command-line vocabulary: the same option means the same thing in every command.

The test walks every sub-command's parser (so a new command is checked without being listed)
and compares each option that several commands share: its type, choices, action and (unless a
reason is given below) its default. Old option names must keep parsing, hidden from the help.
"""

from __future__ import annotations

import argparse

import pytest

from bert_repro.cli import _leaf_parsers, build_parser
from bert_repro.cli_options import DefaultsHelpFormatter

PARSER = build_parser()
LEAVES = {p.prog.removeprefix("bert-repro").strip(): p for p in _leaf_parsers(PARSER)}

#: Shared options whose default may differ between commands, and why.
DEFAULT_MAY_DIFFER = {
    "--out": "each command writes to its own folder",
    "--limit": "compare reads streams (wiki40b) and stops at 5000 texts by default",
    "--seed": "reproduce's default is its preset's seed",
    "--epochs": "probes, edge probes, heads and fine-tuning have their own early-stopping caps",
    "--batch-size": "probes train on 20 sentences a step; fine-tuning uses the task's default",
    "--ks": "restore covers 0..L, freeze a few k",
    "--texts": "compare needs a corpus; similarity adds one to --text",
    "--kinds": "edge has no kinds",
    "--max-seq-length": "fine-tuning uses the task's length (SQuAD windows of 384)",
    "--text": "similarity takes several texts, decompose one",
    "--learning-rate": "fine-tuning uses the task's paper rate, a frozen-feature head 1e-3",
}
#: Shared options whose action or type may differ, and why.
ACTION_MAY_DIFFER = {
    "--model": "probe commands take several models (repeatable), the others one",
    "--text": "similarity takes several texts, decompose one",
    "--epochs": "fine-tuning allows a fraction of an epoch (float)",
    "--test": "finetune stores it as test_data",
}
#: Names that used to mean different things in different commands: accepted, never shown.
RETIRED = ("--n-samples", "--max-length", "--skip-too-long", "--max-train-examples",
           "--max-eval-examples", "--strategy")  # fmt: skip
#: Commands that run a frozen model over a corpus (the extraction path).
EXTRACTING = ("compare", "probe sweep", "probe train", "probe evaluate", "probe edge",
              "embeddings similarity", "embeddings norms", "embeddings decompose",
              "embeddings classify")  # fmt: skip


def _visible(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {
        flag: a
        for a in parser._actions
        for flag in a.option_strings
        if a.help != argparse.SUPPRESS and flag not in ("-h", "--help")
    }


def _signature(action: argparse.Action) -> tuple:
    return (type(action).__name__, action.type, action.choices and tuple(action.choices),
            action.nargs, action.const)  # fmt: skip


def test_every_command_is_walked():
    assert set(EXTRACTING) <= set(LEAVES)
    assert {"finetune", "reproduce", "ablate restore", "ablate freeze"} <= set(LEAVES)


def _shared() -> dict[str, dict[str, argparse.Action]]:
    by_flag: dict[str, dict[str, argparse.Action]] = {}
    for name, parser in LEAVES.items():
        for flag, action in _visible(parser).items():
            by_flag.setdefault(flag, {})[name] = action
    return {flag: where for flag, where in by_flag.items() if len(where) > 1}


@pytest.mark.parametrize("flag", sorted(_shared()))
def test_shared_options_agree(flag):
    where = _shared()[flag]
    if flag not in ACTION_MAY_DIFFER:
        signatures = {name: _signature(a) for name, a in where.items()}
        assert len(set(signatures.values())) == 1, signatures
    if flag not in DEFAULT_MAY_DIFFER:
        defaults = {name: a.default for name, a in where.items()}
        assert len({repr(d) for d in defaults.values()}) == 1, defaults


def test_retired_names_are_hidden_everywhere():
    for name, parser in LEAVES.items():
        shown = set(_visible(parser)) & set(RETIRED)
        assert not shown, f"{name} still shows {shown}"
    for name, parser in LEAVES.items():
        if name != "reproduce":  # the shared data folder; tfds' folder is --tfds-data-dir
            assert "--data-dir" not in _visible(parser), name


def test_batch_size_is_always_the_training_batch():
    for name, parser in LEAVES.items():
        action = _visible(parser).get("--batch-size")
        if action is not None:
            assert "step" in action.help, (name, action.help)


@pytest.mark.parametrize("name", EXTRACTING)
def test_extracting_commands_share_the_extraction_options(name):
    shown = _visible(LEAVES[name])
    for flag in ("--max-tokens", "--max-batch", "--precision", "--xla", "--quiet", "--out"):
        assert flag in shown, f"{name} lacks {flag}"
    models = [shown[f] for f in ("--model", "--base") if f in shown]
    assert models and all("minilm" in a.help for a in models), name


def test_every_command_has_quiet_out_debug_and_shows_defaults():
    formatter = DefaultsHelpFormatter("bert-repro")
    for name, parser in LEAVES.items():
        shown = _visible(parser)
        assert {"--quiet", "--out", "--debug"} <= set(shown), name
        for flag, action in shown.items():
            has_default = (
                action.default not in (None, argparse.SUPPRESS) and action.default is not False
            )
            if has_default and action.option_strings[0] == flag:
                assert "default" in formatter._get_help_string(action), (name, flag)


MINIMAL = {
    "compare": ["--finetuned", "a=x", "--texts", "t.txt", "--out", "o"],
    "finetune": ["agnews", "--out", "o"],
    "embeddings classify": ["--csv", "c.csv"],
    "embeddings norms": ["--csv", "c.csv"],
    "embeddings decompose": ["--text", "t"],
    "ablate restore": ["m"],
    "ablate freeze": ["agnews"],
}


def _parse(name: str, *extra: str) -> argparse.Namespace:
    return PARSER.parse_args([*name.split(), *MINIMAL.get(name, []), *extra])


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_debug_is_accepted_after_the_sub_command(name):
    assert _parse(name).debug is False
    assert _parse(name, "--debug").debug is True


@pytest.mark.parametrize(
    "name, old, dest, value",
    [
        ("compare", ["--n-samples", "7"], "limit", 7),
        ("compare", ["--batch-size", "4"], "max_batch", 4),
        ("embeddings similarity", ["--batch-size", "4"], "max_batch", 4),
        ("embeddings classify", ["--data-dir", "d"], "tfds_data_dir", "d"),
        ("embeddings classify", ["--max-length", "32"], "max_length", 32),
        ("probe train", ["--skip-too-long"], "too_long", "skip"),
        ("finetune", ["--max-train-examples", "9"], "max_train_examples", 9),
        ("finetune", ["--max-eval-examples", "3"], "max_eval_examples", 3),
    ],
)
def test_old_names_still_parse(name, old, dest, value):
    assert getattr(_parse(name, *old), dest) == value


@pytest.mark.parametrize(
    "name, new, dest, value",
    [
        ("compare", ["--limit", "7"], "limit", 7),
        ("compare", [], "limit", 5000),
        ("embeddings similarity", ["--max-batch", "4"], "max_batch", 4),
        ("embeddings classify", ["--tfds-data-dir", "d"], "tfds_data_dir", "d"),
        ("embeddings classify", ["--max-seq-length", "32"], "max_length", 32),
        ("probe train", [], "too_long", "error"),
        ("finetune", ["--limit", "9"], "max_train_examples", 9),
        ("finetune", ["--eval-limit", "3"], "max_eval_examples", 3),
    ],
)
def test_new_names_parse(name, new, dest, value):
    assert getattr(_parse(name, *new), dest) == value


def test_the_default_model_has_a_name():
    from bert_repro.models import DEFAULT_MODEL_NAME, _resolve
    from bert_repro.probe.specs import parse_model_spec

    assert _resolve(DEFAULT_MODEL_NAME) == _resolve(None)
    assert parse_model_spec(DEFAULT_MODEL_NAME) == parse_model_spec(None)
