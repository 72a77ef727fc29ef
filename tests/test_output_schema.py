"""Every command's output folder against the one schema (:mod:`bert_repro.outputs`), and the
one rule for an existing ``--out`` (resume on the same settings, refuse on others naming them,
``--overwrite`` to replace); earlier versions' layouts still load and resume.

Each command runs once through :func:`bert_repro.cli.main` on the tiny random BERT saved as a
folder (module-scoped), with the fewest steps, layers and texts that still make its rows.
"""

from __future__ import annotations

import csv
import json
import re

import pytest
from test_probe_sweep import write_treebank

from bert_repro.cli import main
from bert_repro.outputs import parse_results, read_results, write_results

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SCALARS = (str, int, float, bool, type(None))


def check_schema(folder, command: str, argv: list[str] | None) -> dict:
    """Validate ``folder``'s results.json/results.csv/figures; return the JSON."""
    data = json.loads((folder / "results.json").read_text())
    assert isinstance(data, dict) and {"meta", "rows"} <= set(data)
    meta = data["meta"]
    assert {"argv", "command", "settings", "versions", "models", "time"} <= set(meta)
    assert meta["command"] == command
    assert meta["argv"] == (None if argv is None else ["bert-repro", *argv])
    assert isinstance(meta["settings"], dict) and meta["settings"]
    assert isinstance(meta["versions"], dict) and meta["versions"]["bert_repro"]
    assert all(isinstance(v, str) for v in meta["versions"].values())
    assert ISO_UTC.match(meta["time"]), meta["time"]
    assert isinstance(meta["models"], dict)
    for name, entry in meta["models"].items():
        assert set(entry) == {"path", "fingerprint"}, name
        assert entry["path"] is None or isinstance(entry["path"], str)
        fp = entry["fingerprint"]
        assert fp is None or re.fullmatch(r"[0-9a-f]{64}", fp), (name, fp)
    rows = data["rows"]
    assert isinstance(rows, list) and rows, "no rows"
    keys = list(rows[0])
    for row in rows:
        assert list(row) == keys  # every row has every column, in the same order
        for value in row.values():  # flat: a scalar, or a list of numbers (one CSV cell)
            assert isinstance(value, SCALARS) or (
                isinstance(value, list) and all(isinstance(x, (int, float)) for x in value)
            ), value
    with open(folder / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == keys
        csv_rows = list(reader)
    assert len(csv_rows) == len(rows)
    for row, cells in zip(rows, csv_rows, strict=True):
        for key, value in row.items():
            assert _same(value, cells[key]), (key, value, cells[key])
    # figures only under figures/ (the reproduction's report.html is a page, not a figure)
    loose = sorted(p.name for p in folder.glob("*.html") if p.name != "report.html")
    assert not loose, loose
    return data


def _same(value, cell: str) -> bool:
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == str(value)
    if isinstance(value, (int, float)):
        return float(cell) == pytest.approx(float(value), rel=1e-12, abs=0)
    if isinstance(value, list):
        return [float(x) for x in cell.split()] == pytest.approx(value, rel=1e-5)
    return cell == value


# ------------------------------------------------------------------------------- the runs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("schema-data")
    texts = d / "texts.txt"
    texts.write_text("the dog said hello\na man and a woman\nriver money good bad\n")
    words = d / "words.csv"
    words.write_text("word,definition\ndog,a good friend\nbank,the land by the river\n")
    news = d / "news.csv"
    rows = ["label,text"] + [
        f"{1 + i % 2},{'the dog and the cat' if i % 2 == 0 else 'money in the bank'} {i % 7}"
        for i in range(40)
    ]
    news.write_text("\n".join(rows) + "\n")
    agnews = d / "agnews.csv"
    rows = [
        f"{1 + i % 2},{'the dog and the cat' if i % 2 == 0 else 'money in the bank'},{i}"
        for i in range(40)
    ]
    agnews.write_text("label,title,description\n" + "\n".join(rows) + "\n")
    return {
        "texts": texts,
        "words": words,
        "news": news,
        "agnews": agnews,
        "train": write_treebank(d / "train.conllu", 16, 0),
        "dev": write_treebank(d / "dev.conllu", 6, 1),
        "test": write_treebank(d / "test.conllu", 6, 2),
    }


def _probe_args(action, data, model, out, cache, *extra):
    argv = ["probe", action, "--model", f"tiny={model}", "--out", str(out)]
    argv += ["--cache-dir", str(cache), "--layers", "1", "--quiet"]
    for split in ("train", "dev", "test") if action != "evaluate" else ("test",):
        if action == "train" and split == "test":
            continue
        argv += [f"--{split}", str(data[split])]
    return [*argv, *extra]


@pytest.fixture(scope="module")
def runs(tiny_bert_dir, data, tmp_path_factory):
    """``{name: (folder, command, argv)}`` of every command, run once."""
    root = tmp_path_factory.mktemp("schema-runs")
    cache = root / "cache"
    tiny = str(tiny_bert_dir)
    plan = {
        "compare": (
            "compare",
            ["compare", "--base", tiny, "--finetuned", f"same={tiny}", "--texts",
             f"txt:{data['texts']}", "--limit", "3", "--sample-tokens", "8", "--no-png",
             "--quiet"],
        ),
        "sweep": (
            "probe sweep",
            _probe_args("sweep", data, tiny, root / "sweep", cache, "--kinds", "depth",
                        "--rank", "4", "--epochs", "1"),
        ),
        "train": (
            "probe train",
            _probe_args("train", data, tiny, root / "train", cache, "--kinds", "depth",
                        "--rank", "4", "--epochs", "1"),
        ),
        "edge": (
            "probe edge",
            _probe_args("edge", data, tiny, root / "edge", cache, "--tasks", "pos",
                        "--mixes", "full", "--epochs", "1"),
        ),
        "similarity": (
            "embeddings similarity",
            ["embeddings", "similarity", "--model", tiny, "--text", "the dog said hello",
             "--text", "a man and a dog", "--word", "dog"],
        ),
        "norms": (
            "embeddings norms",
            ["embeddings", "norms", "--model", tiny, "--csv", str(data["words"])],
        ),
        "decompose": (
            "embeddings decompose",
            ["embeddings", "decompose", "--model", tiny, "--text", "the dog"],
        ),
        "classify": (
            "embeddings classify",
            ["embeddings", "classify", "--model", tiny, "--csv", str(data["news"]),
             "--epochs", "2", "--features", "mean"],
        ),
        "finetune": (
            "finetune",
            ["finetune", "agnews", "--model", tiny, "--data", str(data["agnews"]),
             "--max-steps", "2", "--batch-size", "8", "--max-seq-length", "16", "--quiet"],
        ),
    }  # fmt: skip
    out = {}
    for name, (command, argv) in plan.items():
        folder = root / name
        if "--out" not in argv:
            argv = [*argv, "--out", str(folder)]
        assert main(argv) == 0, name
        out[name] = (folder, command, argv)
    ft = str(out["finetune"][0])
    more = {
        "evaluate": (
            "probe evaluate",
            _probe_args("evaluate", data, tiny, root / "evaluate", cache, "--kinds", "depth",
                        "--probes", str(root / "sweep")),
        ),
        "restore": (
            "ablate restore",
            ["ablate", "restore", ft, "--ks", "0", "1", "--quiet", "--out",
             str(root / "restore")],
        ),
        "freeze": (
            "ablate freeze",
            ["ablate", "freeze", "agnews", "--model", tiny, "--data", str(data["agnews"]),
             "--ks", "1", "--max-steps", "2", "--batch-size", "8", "--max-seq-length", "16",
             "--quiet", "--out", str(root / "freeze")],
        ),
    }  # fmt: skip
    for name, (command, argv) in more.items():
        assert main(argv) == 0, name
        out[name] = (root / name, command, argv)
    return out


COMMANDS = (
    "compare",
    "sweep",
    "train",
    "evaluate",
    "edge",
    "similarity",
    "norms",
    "decompose",
    "classify",
    "finetune",
    "restore",
    "freeze",
)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_writes_the_one_schema(runs, name):
    folder, command, argv = runs[name]
    data = check_schema(folder, command, argv)
    assert data["meta"]["models"], "no model recorded"
    assert "func" not in data["meta"]["settings"] and "out" not in data["meta"]["settings"]


def test_the_rows_hold_what_each_command_computes(runs, tiny_bert_dir):
    """A few rows checked against what is known about them (not only their shape)."""
    compare = json.loads((runs["compare"][0] / "results.json").read_text())
    same = [r for r in compare["rows"] if r["model"] == "same"]
    assert [r["layer"] for r in same] == [0, 1, 2]  # the tiny BERT: 2 layers + embeddings
    assert all(r["cosine"] == pytest.approx(1.0, abs=1e-6) for r in same)  # itself
    models = compare["meta"]["models"]
    assert models["same"] == models["base"] == {"path": str(tiny_bert_dir),
                                                "fingerprint": models["base"]["fingerprint"]}  # fmt: skip
    assert (runs["compare"][0] / "figures" / "cosine.html").is_file()

    sweep = json.loads((runs["sweep"][0] / "results.json").read_text())
    (row,) = sweep["rows"]
    assert (row["model"], row["layer"], row["kind"], row["rank"]) == ("tiny", 1, "depth", 4)
    assert sweep["meta"]["models"]["tiny"]["fingerprint"] == row["model_fingerprint"]
    (ev,) = json.loads((runs["evaluate"][0] / "results.json").read_text())["rows"]
    assert ev["root_acc"] == pytest.approx(row["root_acc"], abs=1e-6)  # the same probe

    sim = json.loads((runs["similarity"][0] / "results.json").read_text())
    diag = [r["cosine"] for r in sim["rows"] if r["i"] == r["j"]]
    assert diag and all(c == pytest.approx(1.0, abs=1e-5) for c in diag)

    ft = json.loads((runs["finetune"][0] / "results.json").read_text())
    record = json.loads((runs["finetune"][0] / "finetune.json").read_text())
    dev = {r["metric"]: r["value"] for r in ft["rows"] if r["split"] == "dev"}
    assert dev["accuracy"] == record["metrics"]["accuracy"]
    restore = json.loads((runs["restore"][0] / "results.json").read_text())
    k0 = [r["value"] for r in restore["rows"] if r["k"] == 0 and r["metric"] == "accuracy"]
    assert k0 and all(v == pytest.approx(record["metrics"]["accuracy"]) for v in k0)
    assert (
        restore["meta"]["models"]["base"]["fingerprint"]
        == (record["settings"]["base_model_fingerprint"])
    )


def test_the_reproduction_report_writes_the_one_schema(tmp_path, monkeypatch):
    """The report's results.json (its steps' files written by hand: the full run is long):
    rows are the claims, the numbers they are checked on are sections beside meta/rows."""
    from test_reproduce_claims import fake_run, structural

    from bert_repro.reproduce import report

    monkeypatch.setattr(report, "save_figure", lambda fig, path: [])
    config, state = fake_run(tmp_path, [*structural("MiniLM", [0.3, 0.6])])
    report.write_report(config, tmp_path, state, 1.0)
    data = check_schema(tmp_path, "reproduce", None)
    assert [r["id"] for r in data["rows"]] == [c["id"] for c in data["claims"]]
    assert {"compare", "probes", "finetune", "claims"} <= set(data)


def test_write_and_read_results_round_trip(tmp_path):
    rows = [{"a": 1, "b": "x"}, {"b": "y", "c": [0.5, 0.25]}]
    write_results(tmp_path, rows, command="demo", settings={"k": 1}, columns=["b"])
    data = check_schema(tmp_path, "demo", None)
    assert data["rows"] == [{"b": "x", "a": 1, "c": None}, {"b": "y", "a": None, "c": [0.5, 0.25]}]
    saved = read_results(tmp_path)
    assert saved.rows == data["rows"] and saved.settings == {"k": 1}


def test_earlier_layouts_are_read():
    probe = parse_results(
        {"metadata": {"settings": {"seed": 0}, "time_utc": "t"}, "results": [{"a": 1}]}
    )
    assert (probe.rows, probe.settings, probe.meta["time"], probe.meta["command"]) == (
        [{"a": 1}], {"seed": 0}, "t", None
    )  # fmt: skip
    study = parse_results({"settings": {"x": 1}, "result": {"rows": [{"k": 0}], "levels": []}})
    assert study.rows == [{"k": 0}] and study.extra["summary"]["levels"] == []


# ---------------------------------------------------------------------- the --out rule


def _fresh(runs, name, tmp_path):
    folder, _, argv = runs[name]
    out = tmp_path / name
    return out, [str(out) if a == str(folder) else a for a in argv]


def test_a_command_that_cannot_resume_refuses_a_used_out_until_overwrite(runs, tmp_path, capsys):
    out, argv = _fresh(runs, "decompose", tmp_path)
    assert main(argv) == 0
    first = json.loads((out / "results.json").read_text())["meta"]["time"]
    (out / "stray.txt").write_text("from before")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--out {out} exists and is not empty (it holds the results of `embeddings " in err
    assert "--overwrite" in err
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "stray.txt").exists()  # replaced, not merged
    assert json.loads((out / "results.json").read_text())["meta"]["time"] >= first

    other = tmp_path / "not-results"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    argv = [a if a != str(out) else str(other) for a in argv]
    assert main(argv) == 2 and "exists and is not empty and" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 2  # --overwrite never deletes a foreign folder
    assert "holds no bert-repro results" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"


def test_a_probe_run_resumes_refuses_other_settings_and_overwrites(runs, tmp_path, capsys):
    out, argv = _fresh(runs, "sweep", tmp_path)
    argv = [a for a in argv if a != "--quiet"]
    assert main(argv) == 0
    assert "1 of 1 probes to train" in capsys.readouterr().out
    assert main(argv) == 0  # the same settings: resumed, nothing to do
    assert "0 of 1 probes to train" in capsys.readouterr().out
    changed = [*argv[:-2], "--epochs", "2"]
    assert argv[-2] == "--epochs"
    assert main(changed) == 2
    err = capsys.readouterr().err
    assert "other settings (epochs: 1 then, 2 now)" in err and "--overwrite" in err
    assert main([*changed, "--overwrite"]) == 0
    assert "1 of 1 probes to train" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["meta"]["settings"]["epochs"] == 2
    # another command's folder is refused, naming it
    edge = _fresh(runs, "edge", tmp_path)[1]
    edge[edge.index("--out") + 1] = str(out)
    assert main(edge) == 2
    assert "holds the results of `probe sweep`, not of `probe edge`" in capsys.readouterr().err


def test_earlier_versions_folders_keep_resuming(runs, tmp_path, capsys):
    """An edge run's folder in the earlier layout (edge_results.json, metadata/results) and a
    sweep's (results.json, metadata/results) resume with nothing to train."""
    import shutil

    for name, legacy, line in (
        ("edge", "edge_results", "edge tasks to train: none"),
        ("sweep", "results", "0 of 1 probes to train"),
    ):
        folder, _, argv = runs[name]
        out = tmp_path / name
        shutil.copytree(folder, out)
        new = json.loads((out / "results.json").read_text())
        (out / "results.json").unlink()
        old = {"metadata": {**new["meta"], "time_utc": new["meta"]["time"]}, "results": new["rows"]}
        for key in ("argv", "command", "models", "time"):
            del old["metadata"][key]
        (out / f"{legacy}.json").write_text(json.dumps(old))
        argv = [str(out) if a == str(folder) else a for a in argv if a != "--quiet"]
        capsys.readouterr()
        assert main(argv) == 0, name
        assert line in capsys.readouterr().out, name
    # the old sweep folder's probes are still evaluated (TrainedProbes reads the old layout)
    ev = _fresh(runs, "evaluate", tmp_path)[1]
    ev[ev.index("--probes") + 1] = str(tmp_path / "sweep")
    assert main(ev) == 0


def test_evaluate_into_the_probes_folder_writes_a_sub_folder(runs, tmp_path):
    """The default --out of `probe evaluate` is the training run's folder: its results.json
    stays the training run's, the evaluation's goes to evaluation/."""
    import shutil

    folder, _, argv = runs["evaluate"]
    sweep = tmp_path / "sweep"
    shutil.copytree(runs["sweep"][0], sweep)
    argv = list(argv)
    argv[argv.index("--out") + 1] = str(sweep)
    argv[argv.index("--probes") + 1] = str(sweep)
    assert main(argv) == 0
    assert json.loads((sweep / "results.json").read_text())["meta"]["command"] == "probe sweep"
    check_schema(sweep / "evaluation", "probe evaluate", argv)
