"""The command line under bad input (issue 8): every command has --help; a bad option, file or
model fails before any model is loaded, with exit status 2 and one line on stderr (a traceback
only with --debug)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

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
    rows = ["label,text"] + [f"{1 + i % 4},text {i}" for i in range(40)]
    rows.insert(3, "Sprots,a typo in the label")  # line 4
    typo = tmp_path / "typo.csv"
    typo.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rows = ["label,title,description"] + [f"{1 + i % 4},title {i},text {i}" for i in range(40)]
    rows.insert(3, "Sprots,a typo,in the label")  # line 4 of an AG News file
    agtypo = tmp_path / "agtypo.csv"
    agtypo.write_text("\n".join(rows) + "\n", encoding="utf-8")
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
        "typo": typo,
        "agtypo": agtypo,
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
        ([*compare, "--out", f["empty"], "--limit", "0"], "--limit must be an int >= 1"),
        ([*compare, "--out", f["empty"], "--max-batch", "0"], "max_batch must be a positive int"),
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
        (["probe", "sweep", *probe, "--rank", "0"], "rank must be an int >= 1"),
        (["probe", "sweep", *probe, "--out", f["damaged"]], "cannot continue from it"),
        (["probe", "sweep", *probe, "--model", f"x={f['missing']}"], "does not exist"),
        (
            ["probe", "sweep", *probe, "--cache-dir", f["file"]],
            f"feature cache folder {f['file']} cannot be used: {f['file']} is a file",
        ),
        (
            ["probe", "train", *probe[:-4], "--cache-dir", f["file"] / "sub"],
            f"feature cache folder {f['file'] / 'sub'} cannot be used: {f['file']} is a file",
        ),
        (["probe", "sweep", *probe, "--train", f["cyclic"]], "cyclic.conllu:4: heads form a cycle"),
        (["probe", "train", *probe[:-4], "--dev", f["missing"]], "no such CoNLL-U file"),
        (
            ["probe", "evaluate", "--model", f"tiny={model}", "--test", f["good"]]
            + ["--probes", f["empty"], "--out", f["empty"] / "o"],
            "holds no probes/ folder",
        ),
        (["embeddings", "similarity", *emb, "--text", "a", "--word", " "], "is blank"),
        (["embeddings", "similarity", *emb], "no texts"),
        (["embeddings", "similarity", *emb, "--texts", f["missing"]], "cannot tell what kind"),
        (["embeddings", "norms", *emb, "--csv", f["missing"]], "no such file"),
        (["embeddings", "norms", *emb, "--csv", f["shifted"]], "shifted.csv:3: the row has 3"),
        (["embeddings", "norms", *emb, "--csv", f["texts"], "--limit", "0"], "--limit must be"),
        (["embeddings", "decompose", *emb, "--text", "  "], "text to decompose must be"),
        (["embeddings", "decompose", "--text", "a", "--model", f["missing"]], "does not exist"),
        (
            ["embeddings", "classify", *emb, "--csv", f["shifted"], "--test-fraction", "1.5"],
            "test_fraction must be in (0, 1)",
        ),
        (["embeddings", "classify", *emb, "--csv", f["shifted"], "--max-seq-length", "2"], ">= 3"),
        (
            ["embeddings", "classify", *emb, "--csv", f["agtypo"]],
            "agtypo.csv:4: label 'Sprots' is not one of 1, 2, 3, 4",
        ),
        (["embeddings", "classify", *emb, "--csv", f["shifted"]], "missing column(s) 'label'"),
        (["embeddings", "classify", *emb, "--csv", f["news"]], "news.csv:3: the row has 3 fields"),
        (
            ["embeddings", "classify", *emb, "--csv", f["typo"]],
            "typo.csv:4: label 'Sprots' has 1 text(s), too few: each label needs at least 7 "
            "to hold out test_fraction=0.2 and then validation_fraction=0.1 of them; the labels "
            "with enough are '1', '2', '3', '4'",
        ),
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
        ["embeddings", "similarity", "--recipe", "top"],
        ["embeddings", "similarity", "--pooling", "max"],
        ["embeddings", "similarity", "--sentence", "avg"],
        ["embeddings", "classify", "--csv", "x.csv", "--features", "x"],
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
    assert code == 1 and len(err) == 1
    assert err[0] == f"bert-repro embeddings: error: No space left on device: {files['empty']}"


def test_os_error_message_names_both_paths_of_a_rename():
    from bert_repro.cli import os_error_message

    err = OSError(28, "No space left on device", "/runs/.x.tmp", None, "/runs/x")
    assert os_error_message(err) == "No space left on device: /runs/.x.tmp -> /runs/x"
    assert os_error_message(OSError("disk gone")) == "disk gone"


SEEDED = [
    ["compare"],
    ["probe", "sweep"],
    ["probe", "train"],
    ["finetune", "agnews"],
    ["embeddings", "classify"],
    ["reproduce"],
]


@pytest.mark.parametrize("command", SEEDED, ids=" ".join)
@pytest.mark.parametrize("value", ["-1", "4294967296", "one"])
def test_a_bad_seed_is_an_argparse_error(command, value, capsys):
    """`--seed -1` (before: a traceback after feature extraction or model loading)."""
    with pytest.raises(SystemExit) as info:
        main([*command, "--seed", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2
    assert err[-1].endswith(
        f"error: argument --seed: must be an int from 0 to 4294967295, got {value!r}"
    ), err


def test_debug_after_the_sub_command(files):
    with pytest.raises(BertReproError, match="no texts"):
        main(["embeddings", "similarity", "--out", str(files["empty"]), "--debug"])


REPO = Path(__file__).resolve().parents[1]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``python -c code`` on this checkout; ``env`` values of None remove a variable."""
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=environ
    )


def _fails_before_tensorflow(argv, expected):
    code = (
        "import sys\nfrom bert_repro.cli import main\n"
        f"code = main({[str(a) for a in argv]!r})\n"
        "print(code, 'tensorflow' in sys.modules)"
    )
    run = _python(code)
    assert run.stdout.split() == ["2", "False"], run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"bert-repro {argv[0]}: error: ") and expected in line, line


def test_a_bad_treebank_fails_before_tensorflow_is_imported(files, tiny_bert_dir):
    """`probe sweep --train cyclic.conllu`: exit 2 at once (before: after 5 s of importing TF)."""
    argv = ["probe", "sweep", "--model", f"tiny={tiny_bert_dir}", "--train", files["cyclic"]]
    argv += ["--dev", files["good"], "--test", files["good"], "--out", files["empty"] / "o"]
    _fails_before_tensorflow(argv, "cyclic.conllu:4: heads form")


def test_bad_finetuning_data_fails_before_tensorflow_is_imported(files, tiny_bert_dir):
    """`finetune agnews --data ag.csv` with a shifted row (before: after importing TF)."""
    argv = ["finetune", "agnews", "--model", tiny_bert_dir, "--data", files["ag"]]
    argv += ["--max-seq-length", "32"]
    _fails_before_tensorflow([*argv, "--out", files["empty"] / "ft"], "ag.csv:2: expected 3")


def test_importing_the_library_leaves_the_environment_alone():
    code = (
        "import os\nbefore = dict(os.environ)\nimport bert_repro, bert_repro.features\n"
        "import bert_repro.cli\nbert_repro.cli.build_parser()\nprint(dict(os.environ) == before)"
    )
    assert _python(code).stdout.strip() == "True"


@pytest.mark.parametrize(
    ("argv", "user_set", "seen"),
    [
        ([], None, "3"),  # quiet by default
        (["--debug"], None, None),  # --debug: TensorFlow's logging as it comes
        ([], "1", "1"),  # the user's own level stands
    ],
    ids=["default", "debug", "user-set"],
)
def test_tensorflow_log_level_during_a_command(argv, user_set, seen, files, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    if user_set is not None:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", user_set)
    during = []

    def record(*args, **kwargs):  # the command's first use of the models module
        during.append(os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
        raise KeyboardInterrupt

    monkeypatch.setattr(bert_repro.models, "model_config", record)
    argv = ["embeddings", "similarity", "--text", "a", "--out", str(files["empty"]), *argv]
    assert main(argv) == 130
    assert during == [seen]
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == user_set  # put back afterwards


NOISE = ("cuInit", "E0000", "I0000", "W0000", "oneDNN", "absl::InitializeLog", "cuda drivers")


def _compare(tiny_bert_dir, tmp_path, *extra) -> subprocess.CompletedProcess:
    texts = tmp_path / "texts.txt"
    texts.write_text("the dog said hello\na man and a woman\n", encoding="utf-8")
    argv = ["compare", "--base", str(tiny_bert_dir), "--finetuned", f"ft={tiny_bert_dir}"]
    argv += ["--texts", f"txt:{texts}", "--out", str(tmp_path / "out"), "--no-png", *extra]
    code = f"import sys\nfrom bert_repro.cli import main\nsys.exit(main({argv!r}))"
    return _python(code)


def test_no_tensorflow_logging_on_stderr(tiny_bert_dir, tmp_path):
    """`bert-repro compare ...` on a machine without a GPU: before, about ten lines of C++
    logging came first (`E0000 ... failed call to cuInit: INTERNAL: CUDA error`)."""
    run = _compare(tiny_bert_dir, tmp_path)
    assert run.returncode == 0, run.stderr
    noisy = [line for line in run.stderr.splitlines() if any(n in line for n in NOISE)]
    assert noisy == [], run.stderr
    assert "2 texts" in run.stdout


def test_quiet_prints_nothing_on_success(tiny_bert_dir, tmp_path):
    run = _compare(tiny_bert_dir, tmp_path, "--quiet")
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    assert (tmp_path / "out" / "results.json").exists()
