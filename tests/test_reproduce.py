"""The main job end to end on the tiny BERT: report, results, and a second run that reuses."""

from __future__ import annotations

import pytest

from bert_repro.io import read_json
from bert_repro.reproduce import FinetuneJob, ReproduceConfig, TextSource, run_reproduction


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
                max_train=64,
                max_eval=32,
                max_seq_length=32,
                batch_size=8,
            ),
        ),
        texts=(TextSource("ewt", f"conllu:{ewt / 'en_ewt-ud-dev.conllu'}", 20),),
        probe_train=str(ewt / "en_ewt-ud-dev.conllu"),
        probe_dev=str(ewt / "en_ewt-ud-dev.conllu"),
        probe_test=str(ewt / "en_ewt-ud-test.conllu"),
        probe_limit=30,
        probe_rank=4,
        probe_epochs=2,
        sample_tokens=50,
    )


@pytest.mark.integration
def test_reproduce_writes_a_report_and_reuses_finished_steps(tiny_bert_dir, shared_data, tmp_path):
    config = tiny_config(tiny_bert_dir, shared_data)
    lines: list[str] = []
    report = run_reproduction(config, tmp_path, say=lines.append)
    page = report.read_text()
    for needle in ("Fine-tuning", "Which layers", "Structural probes", "plotly"):
        assert needle in page
    results = read_json(tmp_path / "results.json")
    assert set(results["finetune"]) == {"agnews"}
    cos = results["compare"]["ewt"]["models"]["agnews"]["cosine"]
    assert len(cos) == 3 and all(-1 <= c <= 1 for c in cos)
    layers = {(r["model"], r["kind"], r["layer"]) for r in results["probes"]}
    assert len(layers) == 2 * 2 * 3  # 2 models x 2 kinds x 3 hidden states
    assert results["versions"]["tensorflow"]
    assert (tmp_path / "figures" / "compare-ewt-cosine.html").exists()

    again: list[str] = []
    run_reproduction(config, tmp_path, say=again.append)
    reused = [line for line in again if line.endswith("reused")]
    assert len(reused) == 3, again  # finetune, compare, probes
