"""Layer ablations end to end on MiniLM and real AG News: ``bert-repro finetune`` a few steps,
then ``bert-repro ablate restore`` on the saved folder, with the data reloaded from its record."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def test_cli_finetune_then_restore_on_minilm_agnews(shared_data, tmp_path, capsys):
    from bert_repro.cli import main

    ft = tmp_path / "minilm-agnews"
    argv = ["finetune", "agnews", "--data", str(shared_data / "ag-news" / "test.csv"),
            "--out", str(ft), "--limit", "64", "--eval-limit", "48",
            "--max-steps", "4", "--batch-size", "16", "--max-seq-length", "48",
            "--learning-rate", "1e-4", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out = tmp_path / "ablate"
    argv = ["ablate", "restore", str(ft), "--ks", "0", "3", "6", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "minilm-agnews" in printed and "results.csv" in printed

    record = json.loads((ft / "finetune.json").read_text())
    saved = json.loads((out / "results.json").read_text())
    rows = saved["rows"]
    assert [(r["direction"], r["k"]) for r in rows] == [
        (d, k) for d in ("bottom", "top") for k in (0, 3, 6)
    ]
    # k = 0 is the fine-tuned model on the evaluation examples its run recorded
    assert rows[0]["value"] == rows[3]["value"] == record["metrics"]["accuracy"]
    assert all(r["n_examples"] == 48 and r["num_layers"] == 6 for r in rows)
    assert rows[2]["parts"] == "embeddings+" + "+".join(f"layer_{i}" for i in range(6))
    assert rows[5]["parts"] == "+".join(f"layer_{i}" for i in range(6))  # top: no embeddings
    levels = {lev["level"]: lev["value"] for lev in saved["summary"]["levels"]}
    assert levels == {"finetuned": rows[0]["value"], "base": rows[2]["value"]}
    assert saved["meta"]["settings"]["base_matches_record"] is True
    # k = 0 (both directions) is the run's recorded metric: 4 evaluations (bottom 3 / 6, top 3 / 6)
    assert saved["meta"]["settings"]["n_evaluations"] == 4
    assert saved["meta"]["settings"]["finetuned_from_record"] is True

    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 6 and set(frame["metric"]) == {"accuracy"}
    assert frame["value"].tolist() == [r["value"] for r in rows]
    html = (out / "figures" / "restore_accuracy.html").read_text()
    assert "plotly" in html and "base encoder + fine-tuned head" in html
