"""The main job end to end on the tiny BERT: report, results, a second run that reuses, and a
changed input that re-runs its step."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from bert_repro.io import file_fingerprint, read_json
from bert_repro.journal import input_fingerprints
from bert_repro.reproduce import FinetuneJob, ReproduceConfig, TextSource, run_reproduction
from bert_repro.reproduce.inputs import text_source_file
from bert_repro.reproduce.runner import StepState


def tiny_config(tiny_bert_dir, shared_data) -> ReproduceConfig:
    ewt = shared_data / "ud-english-ewt"
    return ReproduceConfig(
        preset="test",
        base=str(tiny_bert_dir),
        base_label="tiny",
        finetune=(
            FinetuneJob(
                "agnews",
                "agnews",
                str(shared_data / "ag-news" / "test.csv"),
                max_steps=3,
                train_limit=64,
                eval_limit=32,
                max_seq_length=32,
                batch_size=8,
            ),
            FinetuneJob(
                "parse",
                "parse",
                str(ewt / "en_ewt-ud-dev.conllu"),
                eval_data=str(ewt / "en_ewt-ud-test.conllu"),
                max_steps=3,
                train_limit=24,
                eval_limit=12,
                max_seq_length=64,
                batch_size=8,
            ),
        ),
        texts=(TextSource("ewt", f"conllu:{ewt / 'en_ewt-ud-dev.conllu'}", 20, ("parse",)),),
        probe_train=str(ewt / "en_ewt-ud-dev.conllu"),
        probe_dev=str(ewt / "en_ewt-ud-dev.conllu"),
        probe_test=str(ewt / "en_ewt-ud-test.conllu"),
        probe_limit=30,
        probe_rank=4,
        probe_epochs=2,
        edge_epochs=1,
        restore_ks=(0, 1, 2),
        freeze=("parse",),
        freeze_ks=(1,),
        sample_tokens=50,
    )


@pytest.mark.integration
def test_reproduce_writes_a_report_and_reuses_finished_steps(tiny_bert_dir, shared_data, tmp_path):
    config = tiny_config(tiny_bert_dir, shared_data)
    lines: list[str] = []
    report = run_reproduction(config, tmp_path, say=lines.append)
    page = report.read_text()
    for needle in (
        "Fine-tuning",
        "Dependency parsing",
        "Which layers",
        "Structural probes",
        "Edge probes",
        "Layer ablations",
        "Restore:",
        "Freeze:",
        "plotly",
        "<h2>Claims",
    ):
        assert needle in page, needle
    results = read_json(tmp_path / "results.json")
    claims = {c["id"]: c for c in results["claims"]}
    assert set(claims) == {
        "no_forgetting",
        "top_layers",
        "parsing_deeper",
        "out_of_domain",
        "ablations",
    }
    assert claims["parsing_deeper"]["reason"] != "no parsing model in this run"
    assert claims["ablations"]["evidence"], claims["ablations"]  # restore rows reached it
    # the probes ran on the base and agnews: the forgetting check has numbers to judge
    assert claims["no_forgetting"]["evidence"]["UUAS"]["agnews"]["base_best"] is not None
    assert set(results["finetune"]) == {"agnews", "parse"}
    parse = results["finetune"]["parse"]["metrics"]
    assert 0 <= parse["las"] <= parse["uas"] <= 1 and parse["n_words"] > 0
    models = {"tiny", "agnews", "parse"}
    assert {r["model"] for r in results["edge_probes"]} == models
    assert {r["task"] for r in results["edge_probes"]} == {"pos", "deprel"}
    restore = [r for r in results["ablations"] if r["mode"] == "restore"]
    assert {(r["model"], r["direction"], r["k"]) for r in restore} >= {
        (m, d, k) for m in ("agnews", "parse") for d in ("bottom", "top") for k in (0, 1, 2)
    }
    # k = 0 restores nothing: the fine-tuned model's own score
    agnews_k0 = [r["value"] for r in restore if r["model"] == "agnews" and r["k"] == 0]
    assert agnews_k0[0] == pytest.approx(results["finetune"]["agnews"]["metrics"]["accuracy"])
    freeze = [r for r in results["ablations"] if r["mode"] == "freeze"]
    assert {(r["model"], r["k"]) for r in freeze} == {("parse", 1)}
    cos = results["compare"]["ewt"]["models"]["agnews"]["cosine"]
    assert len(cos) == 3 and all(-1 <= c <= 1 for c in cos)
    layers = {(r["model"], r["kind"], r["layer"]) for r in results["probes"]}
    assert len(layers) == 3 * 2 * 3  # 3 models x 2 kinds x 3 hidden states
    assert results["meta"]["versions"]["tensorflow"] and results["meta"]["command"] == "reproduce"
    assert [r["id"] for r in results["rows"]] == list(claims)
    assert {"tiny", "agnews", "parse"} <= set(results["meta"]["models"])
    assert (tmp_path / "figures" / "compare-ewt-cosine.html").exists()

    again: list[str] = []
    run_reproduction(config, tmp_path, say=again.append)
    reused = [line for line in again if line.endswith("reused")]
    # 2 fine-tunes, compare, probes, 2 restores, 1 freeze, edge
    assert len(reused) == 8, again


def _treebank(path, n_sentences, seed):
    """A small CoNLL-U file of random trees over words the tiny vocabulary holds."""
    rng = np.random.default_rng(seed)
    words = "the dog cat said no a good day he can code python we it".split()
    blocks = []
    for s in range(n_sentences):
        n = int(rng.integers(2, 8))
        lines = [f"# sent_id = {path.stem}-{s}"]
        for i in range(1, n + 1):
            head = int(rng.integers(1, i)) if i > 1 else 0
            w = words[int(rng.integers(len(words)))]
            lines.append(f"{i}\t{w}\t{w}\tNOUN\tNN\t_\t{head}\tdep\t_\t_")
        blocks.append("\n".join(lines) + "\n")
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def test_a_changed_input_reruns_its_step_and_says_which(tiny_bert_dir, tmp_path):
    """Probes only (no fine-tuning, no comparison): the cheapest run that has a step to reuse."""
    base = shutil.copytree(tiny_bert_dir, tmp_path / "base")  # its files get touched below
    split = {
        s: _treebank(tmp_path / f"{s}.conllu", n, i)
        for i, (s, n) in enumerate((("train", 12), ("dev", 6), ("test", 6)))
    }
    config = ReproduceConfig(
        preset="test",
        base=str(base),
        base_label="tiny",
        finetune=(),
        texts=(),
        probe_train=str(split["train"]),
        probe_dev=str(split["dev"]),
        probe_test=str(split["test"]),
        probe_rank=4,
        probe_epochs=1,
        probe_layers=(1,),
        sample_tokens=0,
    )
    out = tmp_path / "run"
    run_reproduction(config, out, say=print)
    claims = read_json(out / "results.json")["claims"]
    assert {c["verdict"] for c in claims} == {"inconclusive"}  # no fine-tuned model
    lines: list[str] = []
    run_reproduction(config, out, say=lines.append)
    assert any(line.startswith("[probes] done in an earlier run") for line in lines), lines

    with open(split["dev"], "a", encoding="utf-8") as f:  # one more sentence, same path
        f.write(
            "\n1\tthe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n"
        )
    lines = []
    run_reproduction(config, out, say=lines.append)
    assert f"[probes] input {split['dev']} changed since the earlier run: running again" in lines
    assert any(f"dev file {split['dev']} changed since the results in" in x for x in lines)
    probes = read_json(out / "probes" / "results.json")
    assert probes["meta"]["inputs"]["dev"] == "sha256:" + file_fingerprint(split["dev"])
    assert read_json(out / "state.json")["steps"]["probes"]["inputs"][str(split["dev"])] == (
        "sha256:" + file_fingerprint(split["dev"])
    )

    # the base model's folder re-written (same weights): the step runs, the sweep finds by
    # the weights' content that its probes stand
    os.utime(base / "config.json")
    lines = []
    run_reproduction(config, out, say=lines.append)
    assert f"[probes] input {base} changed since the earlier run: running again" in lines
    assert any("0 of 2 probes to train" in x for x in lines), lines


def test_step_state_names_what_changed(tmp_path):
    state = StepState(tmp_path)
    data = tmp_path / "train.conllu"
    data.write_text("1\ta\ta\tX\tX\t_\t0\troot\t_\t_\n")
    inputs = input_fingerprints(files=[data, None], folders=[tmp_path / "not-yet"])
    assert inputs == {
        str(data): "sha256:" + file_fingerprint(data),
        str(tmp_path / "not-yet"): None,
    }
    out = tmp_path / "out.json"
    out.write_text("{}")
    assert state.why_redo("probes", {"a": 1}, [out], inputs) == "not run before"
    state.record("probes", {"a": 1}, 1.0, inputs)
    again = StepState(tmp_path)  # read back from state.json
    assert again.why_redo("probes", {"a": 1}, [out], inputs) is None
    assert again.why_redo("probes", {"a": 2}, [out], inputs).startswith("its settings changed")
    data.write_text("1\tb\tb\tX\tX\t_\t0\troot\t_\t_\n")
    now = input_fingerprints(files=[data], folders=[tmp_path / "not-yet"])
    assert again.why_redo("probes", {"a": 1}, [out], now) == (
        f"input {data} changed since the earlier run"
    )
    out.unlink()
    assert again.why_redo("probes", {"a": 1}, [out], inputs) == f"its output {out} is missing"
    again.steps["probes"].pop("inputs")  # a state.json of the previous version
    assert "no fingerprints" in again.why_redo("probes", {"a": 1}, [out], inputs)


def test_text_source_files():
    assert text_source_file("csv:data/a.csv:description") == "data/a.csv"
    assert text_source_file("conllu:/x/dev.conllu") == "/x/dev.conllu"
    assert text_source_file("txt:notes.txt") == "notes.txt"
    assert text_source_file("corpus.txt") == "corpus.txt"
    assert text_source_file("wiki40b:train:/data/tfds") is None
    assert text_source_file("wiki40b") is None
