"""``bert-repro compare`` through its own parser (add_parser) on tiny BERT folders."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

from bert_repro.errors import BertReproError, DataError
from bert_repro.plot.cli import add_parser


def parse(argv):
    parser = argparse.ArgumentParser(prog="bert-repro")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def noisy_dir(tiny_bert_dir, tmp_path_factory):
    """The tiny BERT with its top layer perturbed, saved with its tokenizer like a fine-tune."""
    from bert_repro.models import load_bert

    model, tok = load_bert(tiny_bert_dir)
    top = model.config.num_hidden_layers - 1
    rng = np.random.default_rng(1)
    for w in model.weights:
        if f"layer_._{top}/" in w.name:
            w.assign(w.numpy() + rng.normal(0, 0.1, w.shape).astype(np.float32))
    folder = tmp_path_factory.mktemp("noisy")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("speed", [[], ["--precision", "mixed_bfloat16", "--xla"]])
def test_compare_writes_results(tiny_bert_dir, noisy_dir, tmp_path, capsys, speed):
    """Also with the GPU settings (run on the CPU): a model still matches itself exactly."""
    texts = tmp_path / "texts.txt"
    texts.write_text("the dog said hello\na man and a woman\n\nriver money good bad\n")
    out = tmp_path / "run"
    args = parse(
        [
            "compare",
            "--base",
            str(tiny_bert_dir),
            "--finetuned",
            f"same={tiny_bert_dir}",
            "--finetuned",
            f"noisy={noisy_dir}",
            "--texts",
            f"txt:{texts}",
            "--limit",
            "2",
            "--sample-tokens",
            "8",
            "--out",
            str(out),
            "--no-png",
            *speed,
        ]
    )
    assert args.func(args) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["command"] == "compare"
    assert data["summary"]["n_texts"] == 2
    settings, models = data["meta"]["settings"], data["meta"]["models"]
    assert settings["finetuned"] == {"same": str(tiny_bert_dir), "noisy": str(noisy_dir)}
    assert models["same"]["fingerprint"] == models["base"]["fingerprint"]
    assert models["noisy"]["fingerprint"] != models["base"]["fingerprint"]
    assert models["noisy"]["path"] == str(noisy_dir)
    same = data["summary"]["models"]["same"]
    noisy = data["summary"]["models"]["noisy"]
    np.testing.assert_allclose(same["cosine"] + same["rsa"] + same["cka"], 1.0, atol=1e-6)
    assert noisy["cosine"][-1] < 0.999 and noisy["cosine"][0] == pytest.approx(1.0)
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 and set(rows[0]) == {"model", "layer", "cosine", "rsa", "cka"}
    for name in ("cosine", "rsa", "cka", "overview"):
        assert (out / "figures" / f"{name}.html").stat().st_size > 1000
    assert "noisy" in capsys.readouterr().out  # the table (--quiet prints nothing)


def test_compare_bad_input(tiny_bert_dir, tmp_path):
    with pytest.raises(SystemExit):
        parse(["compare", "--texts", "x.txt", "--out", str(tmp_path)])  # no --finetuned
    args = parse(
        [
            "compare",
            "--base",
            str(tiny_bert_dir),
            "--finetuned",
            str(tiny_bert_dir),
            "--texts",
            f"csv:{tmp_path / 'missing.csv'}:text",
            "--out",
            str(tmp_path),
        ]
    )
    assert args.finetuned == [(tiny_bert_dir.name, str(tiny_bert_dir))]
    with pytest.raises(DataError, match="no such file"):
        args.func(args)
    dup = parse(
        ["compare", "--finetuned", "a=x", "--finetuned", "a=y", "--texts", "t.txt", "--out", "o"]
    )
    with pytest.raises(BertReproError, match="unique"):
        dup.func(dup)
