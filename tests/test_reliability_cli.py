"""The command line under bad input (issue 8): every command has --help; a bad option, file or
model fails before any model is loaded, with exit status 2 and one line on stderr (a traceback
only with --debug)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import bert_repro.models
from bert_repro.cli import build_parser, main
from bert_repro.errors import BertReproError


def command_paths(parser=None, prefix=()):
    """Every command and sub-command path of the ``bert-repro`` parser."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from command_paths(sub, (*prefix, name))


PATHS = list(command_paths())


def test_all_areas_are_registered():
    top = {p[0] for p in PATHS}
    assert {"compare", "probe", "finetune", "embeddings", "reproduce"} <= top
    assert {("probe", "sweep"), ("probe", "train"), ("probe", "evaluate")} <= set(PATHS)
    assert {("embeddings", c) for c in ("similarity", "norms", "decompose", "classify")} <= set(
        PATHS
    )


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_command_has_help(path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: bert-repro " + " ".join(path))


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\nfrom bert_repro.cli import build_parser\nbuild_parser()\n"
        "print(sorted(m for m in ('tensorflow', 'transformers', 'tf_keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture()
def no_model_loading(monkeypatch):
    """Fail the test if a model is loaded: validation must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were validated")

    monkeypatch.setattr(bert_repro.models, "load_bert", refuse)


@pytest.fixture()
def files(tmp_path):
    good = tmp_path / "good.conllu"
    good.write_text("1\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n", encoding="utf-8")
    cyclic = tmp_path / "cyclic.conllu"
    cyclic.write_text(
        "1\ta\ta\tDET\tDT\t_\t0\troot\t_\t_\n\n"
        "1\tb\tb\tDET\tDT\t_\t0\troot\t_\t_\n2\tc\tc\tDET\tDT\t_\t3\tdep\t_\t_\n"
        "3\td\td\tDET\tDT\t_\t2\tdep\t_\t_\n",
        encoding="utf-8",
    )
    texts = tmp_path / "t.txt"
    texts.write_text("the dog\n", encoding="utf-8")
    shifted = tmp_path / "shifted.csv"
    shifted.write_text("word,definition\ndog,a pet\ncat,a, pet\n", encoding="utf-8")
    ag = tmp_path / "ag.csv"
    ag.write_text("3,Title,desc\n2,Wall St, again,desc\n", encoding="utf-8")
    news = tmp_path / "news.csv"
    news.write_text("label,text\n1,a\n2,b,c\n", encoding="utf-8")
    rows = [f"{1 + i % 4},title {i},description {i}" for i in range(10)]
    (tmp_path / "ok.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    damaged = tmp_path / "damaged-run"
    damaged.mkdir()
    (damaged / "results.json").write_text('{"metadata": {"sett')  # hand-edited, cut off
    return {
        "good": good,
        "cyclic": cyclic,
        "texts": texts,
        "shifted": shifted,
        "news": news,
        "ag": ag,
        "file": a_file,
        "empty": empty,
        "damaged": damaged,
        "missing": tmp_path / "missing",
    }


def _cases(f, model):
    probe = ["--model", f"tiny={model}", "--train", f["good"], "--dev", f["good"]]
    probe += ["--test", f["good"], "--out", f["empty"] / "out"]
    compare = ["compare", "--base", model, "--finetuned", f"ft={model}"]
    compare += ["--texts", f"txt:{f['texts']}"]
    emb = ["--model", model, "--out", f["empty"] / "e"]
    return [
        # (argv, what the one stderr line must say)
        ([*compare, "--out", f["empty"], "--n-samples", "0"], "--n-samples must be at least 1"),
        ([*compare, "--out", f["empty"], "--batch-size", "0"], "--batch-size must be an int >= 1"),
        ([*compare, "--out", f["file"]], "is a file"),
        (
            ["compare", "--base", model, "--finetuned", f"ft={f['missing']}"]
            + ["--texts", f"txt:{f['texts']}", "--out", f["empty"]],
            "does not exist",
        ),
        (
            ["compare", "--finetuned", f"ft={model}", "--texts", f"txt:{f['missing']}"]
            + ["--out", f["empty"]],
            "no such file",
        ),
        (["probe", "sweep", *probe, "--layers", "0", "99"], "model tiny: layer 99 does not exist"),
        (["probe", "sweep", *probe, "--epochs", "0"], "epochs must be an int >= 1"),
        (["probe", "sweep", *probe, "--limit", "0"], "limit must be an int >= 1"),
        (["probe", "sweep", *probe, "--batch-size", "0"], "batch_size must be an int >= 1"),
        (["probe", "sweep", *probe, "--rank", "0"], "rank must be at least 1"),
        (["probe", "sweep", *probe, "--out", f["damaged"]], "cannot continue from it"),
        (["probe", "sweep", *probe, "--model", f"x={f['missing']}"], "does not exist"),
        (["probe", "sweep", *probe, "--train", f["cyclic"]], "cyclic.conllu:4: heads form a cycle"),
        (["probe", "train", *probe[:-4], "--dev", f["missing"]], "no such CoNLL-U file"),
        (
            ["probe", "evaluate", "--model", f"tiny={model}", "--test", f["good"]]
            + ["--probes", f["empty"], "--out", f["empty"] / "o"],
            "holds no probes/ folder",
        ),
        (["embeddings", "similarity", *emb, "--text", "a", "--strategy", "top"], "strategy="),
        (["embeddings", "similarity", *emb, "--text", "a", "--pooling", "max"], "--pooling="),
        (["embeddings", "similarity", *emb, "--text", "a", "--sentence", "avg"], "--sentence="),
        (["embeddings", "similarity", *emb], "no texts"),
        (["embeddings", "similarity", *emb, "--texts", f["missing"]], "cannot tell what kind"),
        (["embeddings", "norms", *emb, "--csv", f["missing"]], "no such file"),
        (["embeddings", "norms", *emb, "--csv", f["shifted"]], "shifted.csv:3: the row has 3"),
        (["embeddings", "norms", *emb, "--csv", f["texts"], "--limit", "0"], "--limit must be"),
        (["embeddings", "decompose", *emb, "--text", "  "], "--text is blank"),
        (["embeddings", "decompose", "--text", "a", "--model", f["missing"]], "does not exist"),
        (
            ["embeddings", "classify", *emb, "--csv", f["shifted"], "--test-fraction", "1.5"],
            "--test-fraction must be between 0 and 1",
        ),
        (["embeddings", "classify", *emb, "--csv", f["shifted"], "--features", "x"], "--features="),
        (["embeddings", "classify", *emb, "--csv", f["shifted"], "--max-length", "2"], ">= 3"),
        (["embeddings", "classify", *emb, "--csv", f["shifted"]], "missing column(s) 'label'"),
        (["embeddings", "classify", *emb, "--csv", f["news"]], "news.csv:3: the row has 3 fields"),
        (["finetune", "agnews", "--out", f["file"]], "is a file"),
        (["finetune", "agnews", "--out", f["empty"], "--model", f["missing"]], "does not exist"),
        (["finetune", "agnews", "--out", f["empty"], "--data", f["missing"]], "file not found"),
        (["finetune", "agnews", "--out", f["empty"], "--data", f["ag"]], "ag.csv:2: expected 3"),
        (["finetune", "squad", "--out", f["empty"], "--data", f["ag"]], "not valid JSON"),
        (
            ["finetune", "agnews", "--out", f["empty"], "--model", model]
            + ["--max-seq-length", "512"],
            "exceeds the model's max_position_embeddings=64",
        ),
        (["finetune", "agnews", "--out", f["empty"], "--learning-rate", "-1"], "must be positive"),
        (
            ["finetune", "agnews", "--out", f["damaged"], "--data", f["news"].parent / "ok.csv"],
            "exists and is not empty",
        ),
        (["reproduce", "--out", f["file"]], "is a file"),
        (["reproduce", "--out", f["empty"], "--data-dir", f["missing"]], "no shared data folder"),
        (["reproduce", "--out", f["empty"], "--probe-epochs", "0"], "probe_epochs must be"),
        (["reproduce", "--out", f["empty"], "--probe-limit", "-3"], "probe_limit must be"),
        (["reproduce", "--out", f["empty"], "--base", f["missing"]], "does not exist"),
    ]


def test_bad_input_is_one_line_exit_2_before_any_model_is_loaded(
    tiny_bert_dir, files, capsys, no_model_loading
):
    for argv, expected in _cases(files, tiny_bert_dir):
        argv = [str(a) for a in argv]
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (argv, err)
        assert len(err) == 1, (argv, err)
        assert err[0].startswith(f"bert-repro {argv[0]}: error: "), err
        assert expected in err[0], (argv, err[0])


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--finetuned", "=x", "--texts", "t.txt", "--out", "o"],
        ["probe", "sweep", "--layers", "top"],
        ["probe", "sweep", "--kinds", "angle"],
        ["embeddings", "classify"],
        ["reproduce", "--preset", "huge"],
        ["nonsense"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_malformed_options_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: bert-repro") and "error:" in err[-1]


def test_debug_shows_the_traceback(files, capsys):
    with pytest.raises(BertReproError, match="no texts"):
        main(["--debug", "embeddings", "similarity", "--out", str(files["empty"])])


def test_os_errors_are_one_line_too(files, capsys, monkeypatch):
    import bert_repro.text

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(files["empty"]))

    monkeypatch.setattr(bert_repro.text, "load_texts", full)
    code = main(["embeddings", "similarity", "--texts", "x.txt", "--out", str(files["empty"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "No space left on device" in err[0]
