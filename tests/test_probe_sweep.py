"""The sweep and the `bert-repro probe` commands on a tiny random BERT: results, resume, figures,
saved probes, evaluation, bad input reported as one line, and an edited input recomputed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_tiny_bert

from bert_repro.cli import main
from bert_repro.io import file_fingerprint
from bert_repro.probe.cli import format_table
from bert_repro.probe.model import TwoWordProbe
from bert_repro.probe.sweep import COLUMNS, ResultsFile, parse_model_spec, unique_specs

WORDS = "the dog cat said no a good day he can code python we it would be at bank river".split()


def write_treebank(path, n_sentences, seed):
    rng = np.random.default_rng(seed)
    blocks = []
    for s in range(n_sentences):
        n = int(rng.integers(2, 9))
        order = rng.permutation(n)
        heads = [0] * n
        for k in range(1, n):
            heads[order[k]] = int(order[rng.integers(0, k)]) + 1
        words = [WORDS[int(j)] for j in rng.integers(0, len(WORDS), n)]
        lines = [f"# sent_id = {path.stem}-{s}", f"# text = {' '.join(words)}"]
        for i, (w, h) in enumerate(zip(words, heads, strict=True), start=1):
            xpos = "." if i == n and n > 3 else "NN"
            lines.append(f"{i}\t{w}\t{w}\tNOUN\t{xpos}\t_\t{h}\tdep\t_\t_")
        blocks.append("\n".join(lines) + "\n")
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tb")
    return {
        "train": write_treebank(d / "train.conllu", 30, 0),
        "dev": write_treebank(d / "dev.conllu", 12, 1),
        "test": write_treebank(d / "test.conllu", 12, 2),
    }


def sweep_args(files, model_dir, out, cache, *extra):
    return [
        "probe",
        "sweep",
        "--model",
        f"tiny={model_dir}",
        "--train",
        str(files["train"]),
        "--dev",
        str(files["dev"]),
        "--test",
        str(files["test"]),
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--rank",
        "4",
        "--epochs",
        "2",
        *extra,
    ]


def test_sweep_evaluate_and_resume(files, tiny_bert_dir, tmp_path, capsys):
    out, cache = tmp_path / "sweep", tmp_path / "cache"
    assert main(sweep_args(files, tiny_bert_dir, out, cache)) == 0
    printed = capsys.readouterr().out
    assert "6 of 6 probes to train" in printed and "UUAS" in printed

    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    assert data["meta"]["settings"]["epochs"] == 2 and data["meta"]["command"] == "probe sweep"
    assert data["meta"]["models"]["tiny"]["path"] == str(tiny_bert_dir)
    assert data["meta"]["models"]["tiny"]["fingerprint"] == rows[0]["model_fingerprint"]
    assert sorted((r["kind"], r["layer"]) for r in rows) == [
        (k, layer) for k in ("depth", "distance") for layer in range(3)
    ]
    for r in rows:
        metrics = ("uuas", "dspr") if r["kind"] == "distance" else ("root_acc", "nspr")
        assert all(0 <= r[m] <= 1 or -1 <= r[m] <= 1 for m in metrics)
        assert all(r[f"dev_{m}"] is not None for m in metrics)
        assert r["rank"] == 4 and 1 <= r["best_epoch"] <= r["epochs"] <= 2
        assert r["dev_loss"] > 0 and r["model"] == "tiny"
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header.split(",") == [*COLUMNS, "tokenizer_fingerprint"]
    for metric in ("uuas", "dspr", "root_acc", "nspr"):
        assert (out / "figures" / f"{metric}.html").exists()

    # a saved probe loads as in the seed notebook
    weights = out / "probes" / "tiny" / "distance-layer1" / "model"
    probe = TwoWordProbe(32, 4)
    probe.load_weights(str(weights))
    x = np.random.default_rng(0).normal(size=(1, 3, 32)).astype(np.float32)
    assert probe(x).shape == (1, 3, 3)

    # interrupted after 5 entries: the rerun trains only the missing one
    data["rows"] = [r for r in rows if (r["kind"], r["layer"]) != ("depth", 2)]
    (out / "results.json").write_text(json.dumps(data))
    assert main(sweep_args(files, tiny_bert_dir, out, cache)) == 0
    assert "1 of 6 probes to train" in capsys.readouterr().out
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 6
    assert main(sweep_args(files, tiny_bert_dir, out, cache)) == 0
    assert "0 of 6 probes to train" in capsys.readouterr().out

    # other settings into the same folder are refused
    assert main(sweep_args(files, tiny_bert_dir, out, cache, "--seed", "3")) == 2
    err = capsys.readouterr().err
    assert "other settings (seed: 0 then, 3 now)" in err and "--overwrite" in err

    # evaluate the saved probes again on the test file: the same numbers
    ev = tmp_path / "eval"
    args = ["probe", "evaluate", "--model", f"tiny={tiny_bert_dir}", "--probes", str(out)]
    args += ["--test", str(files["test"]), "--out", str(ev), "--cache-dir", str(cache)]
    assert main([*args, "--quiet"]) == 0
    evaluated = json.loads((ev / "results.json").read_text())["rows"]
    final = {
        (r["kind"], r["layer"]): r for r in json.loads((out / "results.json").read_text())["rows"]
    }
    assert len(evaluated) == 6
    for r in evaluated:
        assert r["rank"] == 4  # the probes' rank, not the command line's
        for m in ("uuas", "dspr", "root_acc", "nspr"):
            if r[m] is not None:
                assert r[m] == pytest.approx(final[(r["kind"], r["layer"])][m], abs=1e-6)
    settings = json.loads((ev / "results.json").read_text())["meta"]["settings"]
    assert settings["probe_ranks"] == [4] and "rank" not in settings

    # the probes of "tiny" on another model under the same label: refused, naming both
    other = build_tiny_bert(tmp_path / "other-tiny", seed=1)
    args[args.index("--model") + 1] = f"tiny={other}"
    args[args.index("--out") + 1] = str(tmp_path / "eval-other")
    assert main(args) == 2  # before: scored, and recorded as tiny's
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"bert-repro probe: error: the probes of tiny in {out} were trained ")
    assert f"on tiny={tiny_bert_dir} (model fingerprint " in line
    assert f"not on tiny={other} (fingerprint " in line and "--model tiny=" in line
    assert not (tmp_path / "eval-other" / "results.csv").exists()


def test_train_command_and_layer_selection(files, tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "train"
    args = ["probe", "train", "--model", f"tiny={tiny_bert_dir}", "--train", str(files["train"])]
    args += ["--dev", str(files["dev"]), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    args += ["--layers", "-1", "2", "--kinds", "depth", "--rank", "4", "--epochs", "1"]
    assert main(args) == 0  # -1 is 2 on this 3-state model: one probe (before: trained twice)
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    assert (row["layer"], row["kind"]) == (2, "depth")
    assert row["root_acc"] is None and row["dev_root_acc"] is not None  # no test file given
    assert "(dev)" in capsys.readouterr().out
    assert main([*args[:-6], "--layers", "5", "--rank", "4", "--epochs", "1"]) == 2
    assert "layer 5 does not exist" in capsys.readouterr().err


def test_bad_treebank_is_one_line_with_file_and_line(files, tiny_bert_dir, tmp_path, capsys):
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\ta\ta\tX\tX\t_\t2\tdep\t_\t_\n2\tb\tb\tX\tX\t_\t1\tdep\t_\t_\n")
    args = sweep_args(files, tiny_bert_dir, tmp_path / "o", tmp_path / "c")
    args[args.index("--train") + 1] = str(bad)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{bad}:1: sentence has 0 roots" in err


def test_model_specs():
    assert parse_model_spec(None).source is None
    assert parse_model_spec("default").label == "all-MiniLM-L6-v2"
    assert parse_model_spec("mnli=models/mnli").label == "mnli"
    assert parse_model_spec("org/bert-base-uncased").label == "bert-base-uncased"
    specs = unique_specs([parse_model_spec("a/x"), parse_model_spec("b/x")])
    assert [s.label for s in specs] == ["x", "x-2"]


def test_format_table():
    rows = [
        {"model": "m", "layer": 1, "kind": "distance", "uuas": 0.5, "dspr": 0.6},
        {"model": "m", "layer": 1, "kind": "depth", "root_acc": 0.7, "nspr": 0.8},
    ]
    text = format_table(rows)
    assert "0.500  0.600  0.700  0.800" in text


def test_float16_cache_halves_the_features_and_keeps_the_metrics(
    files, tiny_bert_dir, tmp_path, capsys
):
    runs = {}
    for dtype in ("float32", "float16"):
        out, cache = tmp_path / dtype, tmp_path / f"cache-{dtype}"
        extra = ("--cache-dtype", dtype, "--layers", "1", "--kinds", "distance", "--quiet")
        assert main(sweep_args(files, tiny_bert_dir, out, cache, *extra)) == 0
        (row,) = json.loads((out / "results.json").read_text())["rows"]
        layer_files = sorted(cache.rglob("layer_001.npy"))
        assert len(layer_files) == 3  # train, dev, test
        runs[dtype] = (row, sum(f.stat().st_size for f in layer_files), layer_files)
    for f in runs["float16"][2]:
        assert np.load(f, mmap_mode="r").dtype == np.float16
    ratio = runs["float16"][1] / runs["float32"][1]
    assert 0.45 < ratio < 0.55  # half, up to the .npy headers
    for m in ("uuas", "dspr"):
        assert runs["float16"][0][m] == pytest.approx(runs["float32"][0][m], abs=0.02)
    # a results folder made with one cache dtype is not continued with the other
    extra = ("--cache-dtype", "float16", "--layers", "1", "--kinds", "distance")
    args = sweep_args(files, tiny_bert_dir, tmp_path / "float32", tmp_path / "c2", *extra)
    assert main(args) == 2
    assert "cache_dtype" in capsys.readouterr().err


def test_sweep_with_the_gpu_settings_keeps_its_features_apart(files, tiny_bert_dir, tmp_path):
    """--precision/--xla run on the CPU; mixed-precision features get their own cache entry."""
    cache = tmp_path / "cache"
    extra = ("--layers", "1", "--kinds", "depth", "--quiet")
    assert main(sweep_args(files, tiny_bert_dir, tmp_path / "a", cache, *extra)) == 0
    fast = ("--precision", "mixed_bfloat16", "--xla")
    assert main(sweep_args(files, tiny_bert_dir, tmp_path / "b", cache, *extra, *fast)) == 0
    data = json.loads((tmp_path / "b" / "results.json").read_text())
    assert data["meta"]["settings"]["precision"] == "mixed_bfloat16"
    models = {json.loads(m.read_text())["model"] for m in cache.glob("*/meta.json")}
    assert len(models) == 2  # float32 and bfloat16 entries, never mixed up
    (a,) = json.loads((tmp_path / "a" / "results.json").read_text())["rows"]
    (b,) = data["rows"]
    assert a["model_fingerprint"] != b["model_fingerprint"]
    assert b["root_acc"] == pytest.approx(a["root_acc"], abs=0.15)


def _rehang_as_chains(path):
    """Same words, other trees: every word's head becomes the word before it."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) == 10 and cols[0].isdigit():
            cols[6] = str(int(cols[0]) - 1)
        lines.append("\t".join(cols))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_an_edited_treebank_retrains_and_says_why(tiny_bert_dir, tmp_path, capsys):
    """The user fixes the train file in place and reruns the same command into the same --out:
    the probe is retrained on the new trees, not read back from the earlier results."""
    files = {
        "train": write_treebank(tmp_path / "train.conllu", 16, 10),
        "dev": write_treebank(tmp_path / "dev.conllu", 6, 11),
        "test": write_treebank(tmp_path / "test.conllu", 6, 12),
    }
    out, cache = tmp_path / "sweep", tmp_path / "cache"
    # depth: a new probe's L1 gradient is sign(pred - gold), and only the root's gold (0) is
    # below its first predictions; batches of 4 give several Adam steps
    extra = ("--layers", "1", "--kinds", "depth", "--epochs", "1", "--batch-size", "4")
    argv = sweep_args(files, tiny_bert_dir, out, cache, *extra)
    assert main(argv) == 0
    (before,) = json.loads((out / "results.json").read_text())["rows"]
    capsys.readouterr()

    _rehang_as_chains(files["train"])  # same words (so the same cached features), new trees
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        f"train file {files['train']} changed since the results in {out} were made: retraining"
        in printed
    )
    assert "1 of 1 probes to train" in printed
    data = json.loads((out / "results.json").read_text())
    (after,) = data["rows"]
    assert data["meta"]["inputs"]["train"] == "sha256:" + file_fingerprint(files["train"])
    assert after["dev_loss"] != before["dev_loss"]

    # the rows are those of a fresh run on the edited file
    fresh = tmp_path / "fresh"
    assert main(sweep_args(files, tiny_bert_dir, fresh, cache, *extra, "--quiet")) == 0
    (ref,) = json.loads((fresh / "results.json").read_text())["rows"]
    for m in ("dev_loss", "root_acc", "nspr", "dev_root_acc", "dev_nspr"):
        if ref[m] is None:  # NSpr: no sentence of 5-50 words in a split
            assert after[m] is None
        else:
            assert after[m] == pytest.approx(ref[m], abs=1e-6)

    assert main(argv) == 0  # unchanged now: nothing to do
    assert "0 of 1 probes to train" in capsys.readouterr().out


def _results_file(folder, rows, inputs):
    folder.mkdir()
    meta = {"settings": {"train": "t.conllu"}}
    if inputs is not None:
        meta["inputs"] = inputs
    (folder / "results.json").write_text(json.dumps({"metadata": meta, "results": rows}))


def test_results_rows_are_dropped_when_an_input_or_the_model_changed(tmp_path):
    row = {"model": "m", "layer": 1, "kind": "depth", "rank": 4}
    rows = [
        dict(row, model_fingerprint="w1", tokenizer_fingerprint="t1"),
        dict(row, model="other", model_fingerprint="w9", tokenizer_fingerprint="t9"),
    ]
    inputs = {"train": "sha256:a", "dev": "sha256:b"}
    settings = {"train": "t.conllu", "dev": "d"}

    _results_file(tmp_path / "same", rows, inputs)
    same = ResultsFile(tmp_path / "same", settings, inputs=inputs)
    assert len(same.rows) == 2 and same.notes == []
    assert same.find("m", "w1", 1, "depth", 4, tokenizer="t1") is not None
    assert same.find("m", "w1", 1, "depth", 4, tokenizer="t2") is None
    assert same.drop_other_versions("m", "w1", "t2") == 1  # another tokenizer: m's row goes
    assert [r["model"] for r in same.rows] == ["other"]

    _results_file(tmp_path / "edited", rows, inputs)
    dev_edited = dict(inputs, dev="sha256:c")
    ev = ResultsFile(tmp_path / "edited", settings, inputs=dev_edited, redo="re-evaluating")
    assert ev.rows == []
    assert ev.notes == [
        f"dev file d changed since the results in {tmp_path / 'edited'} were made: re-evaluating"
    ]

    _results_file(tmp_path / "old", rows, None)  # made before fingerprints were recorded
    old = ResultsFile(tmp_path / "old", settings, inputs=inputs)
    assert old.rows == [] and "do not record the content" in old.notes[0]
