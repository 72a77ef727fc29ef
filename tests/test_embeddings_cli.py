"""``bert-repro embeddings ...`` end to end on the tiny BERT folder."""

from __future__ import annotations

import argparse
import json
from typing import get_args

import numpy as np
import pytest

from bert_repro.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["embeddings", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_similarity_command(tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "sim"
    code, stdout, _ = run(
        capsys,
        "similarity",
        "--model", tiny_bert_dir,
        "--out", out,
        "--text", "I code. code frees my minds, body and soul.",
        "--text", "Yes. coding is the best thing to do in the free time.",
        "--word", "code",
        "--word", "minds",
        "--recipe", "-1",
        "--sentence", "cls", "mean",
    )  # fmt: skip
    assert code == 0, stdout
    res = json.loads((out / "results.json").read_text())
    assert (
        res["meta"]["settings"]["recipe"] == -1
        and res["meta"]["settings"]["extraction"]["max_batch"] is None
    )
    words = res["summary"]["words"]
    code_sim = np.array(words["code"]["similarity"])
    assert code_sim.shape == (2, 2) and np.allclose(np.diag(code_sim), 1.0)
    assert words["minds"]["occurrences"][0]["positions"] == [12, 13, 14, 15, 16]
    assert set(res["summary"]["sentences"]) == {"cls", "mean"}
    assert "wall_time_s" in res["meta"]["settings"] and "versions" in res["meta"]
    assert (
        res["meta"]["command"] == "embeddings similarity" and "func" not in res["meta"]["settings"]
    )
    assert res["meta"]["argv"][:2] == ["bert-repro", "embeddings"]
    assert (out / "figures" / "word_code.html").exists() and (
        out / "figures" / "sentences_mean.html"
    ).exists()
    assert (out / "results.csv").read_text().startswith("kind,name,i,j,label_i,label_j,cosine")


def test_norms_command(tiny_bert_dir, tmp_path, capsys):
    csv = tmp_path / "w.csv"
    csv.write_text("word,definition\ndog,a good friend\nbank,the land by the river\n")
    out = tmp_path / "norms"
    code, stdout, _ = run(capsys, "norms", "--model", tiny_bert_dir, "--csv", csv, "--out", out)
    assert code == 0
    assert "norm_pooler" in stdout
    res = json.loads((out / "results.json").read_text())
    assert res["summary"]["n_words"] == 2
    assert res["summary"]["describe"]["norm_hidden"]["count"] == 2
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0] == "word,definition,norm_embedding,norm_hidden,norm_pooler"
    assert (out / "figures" / "norms.html").exists() and (out / "norms_describe.csv").exists()


def test_decompose_command(tiny_bert_dir, tmp_path, capsys):
    for extra in ([], ["--pair", "i code"]):
        out = tmp_path / f"dec{len(extra)}"
        code, _, _ = run(
            capsys, "decompose", "--model", tiny_bert_dir, "--text", "the dog", "--out", out, *extra
        )
        assert code == 0
        res = json.loads((out / "results.json").read_text())
        assert res["summary"]["max_abs_difference_vs_hidden_states_0"] < 1e-5
        assert res["summary"]["tokens"][0] == "[CLS]"
        assert (out / "figures" / "decompose.html").exists()
        table = (out / "results.csv").read_text().splitlines()
        assert (
            table[0] == "position,token,norm_token,norm_segment,norm_position,norm_sum,norm_output"
        )
        assert table[1].startswith("0,[CLS],")


def test_no_figures_writes_the_results_only(tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "plain"
    argv = ["decompose", "--model", tiny_bert_dir, "--text", "the dog", "--out", out]
    assert run(capsys, *argv, "--no-figures")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "results.json"]
    assert json.loads((out / "results.json").read_text())["rows"][0]["token"] == "[CLS]"


def test_classify_command(tiny_bert_dir, tmp_path, capsys):
    csv = tmp_path / "news.csv"
    rows = ["label,text"] + [
        f"{1 + i % 2},{'the dog and the cat' if i % 2 == 0 else 'money in the bank'} {i % 7}"
        for i in range(40)
    ]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "cls"
    code, stdout, _ = run(
        capsys, "classify", "--model", tiny_bert_dir, "--csv", csv, "--out", out,
        "--epochs", "3", "--features", "mean", "pooler",
    )  # fmt: skip
    assert code == 0, stdout
    res = json.loads((out / "results.json").read_text())
    assert res["summary"]["n_test"] == 8 and set(res["summary"]["results"]) == {"mean", "pooler"}
    assert 0.0 <= res["summary"]["results"]["mean"]["accuracy"] <= 1.0
    assert res["meta"]["settings"]["features"] == ["mean", "pooler"]
    assert (out / "figures" / "confusion_mean.html").exists() and (
        out / "figures" / "training.html"
    ).exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["similarity", "--text", "the dog", "--word", "cat"], "does not occur"),
        (["similarity"], "no texts"),
        (["classify", "--csv", "{bad}"], "missing column"),
        (["norms", "--csv", "{bad}"], "'definition'"),
    ],
)
def test_bad_input_gives_one_line_error(tiny_bert_dir, tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,value\na,1\n")
    argv = [a.replace("{bad}", str(bad)) for a in argv]
    code, _, err = run(capsys, *argv, "--model", tiny_bert_dir, "--out", tmp_path / "o")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def _subcommand(*path):
    from bert_repro.cli import build_parser

    parser = build_parser()
    for name in path:
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[name]
    return {opt: a for a in parser._actions for opt in a.option_strings}


def test_choices_are_the_library_literals():
    from bert_repro.embeddings import RECIPES, RecipeName, SentencePooling
    from bert_repro.embeddings.cli import recipe_arg
    from bert_repro.ops import SUBWORD_POOLINGS, SubwordPooling

    similarity = _subcommand("embeddings", "similarity")
    classify = _subcommand("embeddings", "classify")
    assert tuple(similarity["--pooling"].choices) == get_args(SubwordPooling) == SUBWORD_POOLINGS
    assert tuple(similarity["--sentence"].choices) == get_args(SentencePooling)
    assert tuple(classify["--features"].choices) == get_args(SentencePooling)
    for options in (similarity, classify):
        action = options["--recipe"]
        assert action.type is recipe_arg and action.default == "last_layer"
        assert all(name in action.help for name in get_args(RecipeName))
    assert [recipe_arg(name) for name in RECIPES] == list(RECIPES) and recipe_arg("-2") == -2
    with pytest.raises(argparse.ArgumentTypeError, match="first_layer"):
        recipe_arg("top")
    assert "--strategy" not in similarity and "--strategy" not in classify


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["similarity", "--text", "a", "--recipe", "top"], "argument --recipe: recipe='top'"),
        (["similarity", "--text", "a", "--strategy", "sum_all"], "unrecognized arguments"),
        (["similarity", "--text", "a", "--pooling", "max"], "argument --pooling: invalid choice"),
        (["similarity", "--text", "a", "--sentence", "avg"], "argument --sentence: invalid"),
        (["classify", "--csv", "x.csv", "--features", "x"], "argument --features: invalid"),
    ],
)
def test_bad_choices_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["embeddings", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
