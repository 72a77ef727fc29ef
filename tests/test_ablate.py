"""Layer ablations on a tiny random BERT fine-tuned on AG-News-like keyword data: the part rule,
the weight mix, restore (k = 0 is the fine-tuned model, k = L the base encoder under the
fine-tuned head, only the intended variables change), freeze, results and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_tiny_bert

from bert_repro.ablate import (
    AblationResult,
    check_same_architecture,
    encoder_arrays,
    freeze_sweep,
    metric_values,
    mix_weights,
    restore_layers,
    restored,
)
from bert_repro.encoder_parts import ablated_parts, freeze_bottom, layer_counts, variable_part
from bert_repro.errors import ConfigError, DataError, ModelError
from bert_repro.finetune import (
    FinetuneConfig,
    finetune,
    load_finetuned,
    load_task_data,
    paper_defaults,
)
from bert_repro.finetune.classification import encode_classification
from bert_repro.finetune.dataset import predict_logits

KEYS = ("dog", "bank", "code", "night")  # one keyword per class, all whole tiny-vocab words
FILLER = "the a of to and in is it that was he she they we you".split()
L = 2  # layers of the tiny BERT


def keyword_rows(n: int, seed: int) -> list[str]:
    """AG-News-like CSV rows ``label,title,description`` (labels 1..4): a class keyword among
    filler words, learnable in a few dozen steps."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % len(KEYS)
        words = list(rng.choice(FILLER, 5))
        words.insert(int(rng.integers(0, 6)), KEYS[label])
        rows.append(f"{label + 1},{' '.join(words)},{' '.join(rng.choice(FILLER, 3))}")
    return rows


def _config(**kw) -> FinetuneConfig:
    # a random tiny BERT needs a high rate to move (see test_finetune_train)
    # (every weight moves in the first steps; what is learnt does not matter here)
    base = dict(learning_rate=1e-2, batch_size=16, epochs=100, max_steps=6, max_seq_length=16)
    return paper_defaults("agnews", **{**base, **kw})


@pytest.fixture(scope="module")
def news_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("news") / "news.csv"
    path.write_text("label,title,description\n" + "\n".join(keyword_rows(100, 0)) + "\n")
    return path


@pytest.fixture(scope="module")
def data(news_csv):
    return load_task_data("agnews", news_csv, seed=0)  # 80 / 20, as `bert-repro finetune`


@pytest.fixture(scope="module")
def ft_dir(tiny_bert_dir, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "tiny-agnews"
    finetune("agnews", tiny_bert_dir, data=data, config=_config(), out_dir=out)
    return out


@pytest.fixture(scope="module")
def restore_result(ft_dir):
    return restore_layers(ft_dir)  # base and examples from finetune.json


# --- the part rule and the pure mix ------------------------------------------------------------


def test_variable_parts_and_the_k_rule_by_hand():
    assert variable_part("tf_bert_model_7/bert/embeddings/word_embeddings/weight:0") == "embeddings"
    assert variable_part("bert/embeddings/LayerNorm/gamma:0") == "embeddings"
    assert variable_part("bert/encoder/layer_._11/output/dense/bias:0") == "layer_11"
    assert variable_part("m/bert/pooler/dense/kernel:0") == "pooler"
    with pytest.raises(ModelError, match="no part"):
        variable_part("classification_head/classifier/kernel:0")
    assert ablated_parts("bottom", 0, 3) == () == ablated_parts("top", 0, 3)
    assert ablated_parts("bottom", 1, 3) == ("embeddings", "layer_0")
    assert ablated_parts("bottom", 3, 3) == ("embeddings", "layer_0", "layer_1", "layer_2")
    assert ablated_parts("top", 1, 3) == ("layer_2",)
    assert ablated_parts("top", 3, 3) == ("layer_0", "layer_1", "layer_2")  # no embeddings
    with pytest.raises(ConfigError, match="from 0 to the model's 3 layers"):
        ablated_parts("bottom", 4, 3)
    with pytest.raises(ConfigError, match="'bottom', 'top'"):
        ablated_parts("middle", 1, 3)
    assert layer_counts(None, 2) == [0, 1, 2] and layer_counts([2, 0, 2], 2) == [0, 2]
    with pytest.raises(ConfigError):
        layer_counts([], 2)


def test_mix_weights_takes_exactly_the_parts_from_the_base():
    keys = [
        "bert/embeddings/word_embeddings/weight:0",
        "bert/encoder/layer_._0/attention/self/query/kernel:0",
        "bert/encoder/layer_._1/attention/self/query/kernel:0",
        "bert/pooler/dense/kernel:0",
    ]
    ft = {k: np.full((2, 2), i, np.float32) for i, k in enumerate(keys)}
    base = {k: np.full((2, 2), 10 + i, np.float32) for i, k in enumerate(keys)}
    mixed = mix_weights(ft, base, ablated_parts("bottom", 1, 2))
    assert [float(mixed[k][0, 0]) for k in keys] == [10, 11, 2, 3]
    mixed = mix_weights(ft, base, ablated_parts("top", 2, 2))
    assert [float(mixed[k][0, 0]) for k in keys] == [0, 11, 12, 3]  # pooler stays fine-tuned
    assert float(ft[keys[0]][0, 0]) == 0 and float(base[keys[0]][0, 0]) == 10  # inputs untouched
    with pytest.raises(ModelError, match="weight shape"):
        mix_weights(ft, {**base, keys[1]: np.zeros((3, 2), np.float32)}, ())
    with pytest.raises(ModelError, match="different variables"):
        check_same_architecture({k: (2, 2) for k in keys}, {k: (2, 2) for k in keys[:3]})


def test_metric_values_split_counts_from_metrics():
    assert metric_values({"accuracy": 0.5, "n_examples": 20}) == ({"accuracy": 0.5}, 20)
    assert metric_values({"exact_match": 50.0, "f1": 60.0, "n_questions": 4}) == (
        {"exact_match": 50.0, "f1": 60.0},
        4,
    )


# --- restore -------------------------------------------------------------------------------


def _logits(model, tokenizer, examples):
    features, _ = encode_classification(tokenizer, examples, 16)
    return predict_logits(model, features, 64, pad_id=tokenizer.pad_token_id)


def test_restore_k0_is_the_finetuned_model_and_rows_are_complete(ft_dir, restore_result, data):
    record = json.loads((ft_dir / "finetune.json").read_text())
    res = restore_result
    ft_acc = record["metrics"]["accuracy"]
    # k = 0 restores nothing: exactly the fine-tuned model's metric on the same examples
    assert res.value(mode="restore", direction="bottom", k=0, metric="accuracy") == ft_acc
    assert res.value(mode="restore", direction="top", k=0, metric="accuracy") == ft_acc
    assert {(r["direction"], r["k"]) for r in res.rows} == {
        (d, k) for d in ("bottom", "top") for k in range(L + 1)
    }
    assert all(r["n_examples"] == len(data.eval) == 20 for r in res.rows)
    # k = 0 (both directions) is the fine-tuning run's own metric, from finetune.json
    assert res.settings["n_evaluations"] == 2 * L and res.settings["finetuned_from_record"]
    assert res.settings["base_matches_record"] is True
    levels = {r["level"]: r["value"] for r in res.levels}
    assert levels["finetuned"] == ft_acc
    assert levels["base"] == res.value(mode="restore", direction="bottom", k=L, metric="accuracy")
    row = next(r for r in res.rows if r["direction"] == "bottom" and r["k"] == 1)
    assert row["parts"] == "embeddings+layer_0" and row["num_layers"] == L


def test_restore_k0_on_given_examples_or_batches_is_evaluated(ft_dir, data, monkeypatch):
    """Only the recorded examples at the recorded batch size reuse the recorded metric; other
    examples or another batch size are evaluated, and k = 0 still equals the record."""
    from bert_repro.finetune.tasks import ClassificationTask

    record = json.loads((ft_dir / "finetune.json").read_text())
    seen = []
    real = ClassificationTask.evaluate

    def counting(self, model, tokenizer, examples, config):
        seen.append((len(examples), config.eval_batch_size))
        return real(self, model, tokenizer, examples, config)

    monkeypatch.setattr(ClassificationTask, "evaluate", counting)
    for kwargs in ({"examples": data.eval}, {"eval_batch_size": 7}):
        seen.clear()
        res = restore_layers(ft_dir, ks=[0], directions=["bottom"], **kwargs)
        assert not res.settings["finetuned_from_record"]
        batch = kwargs.get("eval_batch_size", record["settings"]["config"]["eval_batch_size"])
        assert seen[0] == (len(data.eval), batch)
        value = res.value(mode="restore", direction="bottom", k=0, metric="accuracy")
        assert value == record["metrics"]["accuracy"]
    seen.clear()
    res = restore_layers(ft_dir, ks=[0], directions=["bottom"])
    assert res.settings["finetuned_from_record"] and len(seen) == 1  # only the base level


def test_restore_logits_k0_exact_and_all_layers_is_base_encoder_with_ft_head(
    ft_dir, tiny_bert_dir, data
):
    from bert_repro.finetune import BertTaskModel
    from bert_repro.finetune.trainer import dummy_inputs
    from bert_repro.models import load_bert

    model, tokenizer, _ = load_finetuned(ft_dir)
    base_encoder, _ = load_bert(tiny_bert_dir)
    base = encoder_arrays(base_encoder)
    ft = encoder_arrays(model.encoder)
    ft_logits = _logits(model, tokenizer, data.eval)
    with restored(model.encoder, base, ()):
        np.testing.assert_array_equal(_logits(model, tokenizer, data.eval), ft_logits)

    everything = ablated_parts("bottom", L, L)
    with restored(model.encoder, base, everything) as keys:
        inside = encoder_arrays(model.encoder)
        mixed_logits = _logits(model, tokenizer, data.eval)
    assert len(keys) == len(ft) - 2  # all but the pooler's kernel and bias
    for k, v in inside.items():  # base encoder weights, the fine-tuned pooler
        np.testing.assert_array_equal(v, ft[k] if "pooler" in k else base[k], err_msg=k)
    for k, v in encoder_arrays(model.encoder).items():  # put back exactly on exit
        np.testing.assert_array_equal(v, ft[k], err_msg=k)

    # the reference: the base encoder with the fine-tuned pooler and head, built from scratch
    for w in base_encoder.weights:
        if "pooler" in w.name:
            w.assign(ft[w.name.split("/", 1)[1]])
    head = type(model.head).from_config(model.head.get_config())
    reference = BertTaskModel(base_encoder, head)
    reference(dummy_inputs(tokenizer))
    head.set_weights(model.head.get_weights())
    ref_logits = _logits(reference, tokenizer, data.eval)
    np.testing.assert_allclose(mixed_logits, ref_logits, rtol=1e-5, atol=1e-6)
    assert not np.allclose(mixed_logits, ft_logits, atol=1e-3)  # the swap reached the predictions


def test_bottom_and_top_restores_change_only_the_intended_variables(ft_dir, tiny_bert_dir):
    from bert_repro.models import load_bert

    model, _, _ = load_finetuned(ft_dir)
    base = encoder_arrays(load_bert(tiny_bert_dir)[0])
    ft = encoder_arrays(model.encoder)
    for k, v in ft.items():
        if variable_part(k) != "embeddings" or "word_embeddings" not in k:
            assert not np.array_equal(v, base[k]), k  # fine-tuning moved every tensor here
    by_hand = {  # the parts restored, worked out from the rule for L = 2
        ("bottom", 0): set(),
        ("bottom", 1): {"embeddings", "layer_0"},
        ("bottom", 2): {"embeddings", "layer_0", "layer_1"},
        ("top", 0): set(),
        ("top", 1): {"layer_1"},
        ("top", 2): {"layer_0", "layer_1"},
    }
    for (direction, k), parts in by_hand.items():
        assert set(ablated_parts(direction, k, L)) == parts
        with restored(model.encoder, base, parts) as keys:
            inside = encoder_arrays(model.encoder)
        assert set(keys) == {key for key in ft if variable_part(key) in parts}
        expected = mix_weights(ft, base, parts)
        for key, value in inside.items():
            source = base if variable_part(key) in parts else ft
            np.testing.assert_array_equal(value, source[key], err_msg=f"{direction} {k} {key}")
            np.testing.assert_array_equal(value, expected[key])


def test_restore_result_saves_json_csv_and_figure(restore_result, tmp_path):
    import pandas as pd

    written = restore_result.save(tmp_path)
    names = {p.name for p in written}
    assert {"results.json", "results.csv", "restore_accuracy.html"} <= names
    frame = pd.read_csv(tmp_path / "results.csv")
    assert list(frame.columns[:5]) == ["model", "task", "mode", "direction", "k"]
    assert {"metric", "value", "n_examples"} <= set(frame.columns) and len(frame) == 2 * (L + 1)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"][0]["mode"] == "restore"
    assert saved["meta"]["settings"]["directions"] == ["bottom", "top"]
    fig = restore_result.figures()["restore_accuracy"]
    names = [t.name for t in fig.data]
    assert names[:2] == ["tiny-agnews (agnews), bottom k", "tiny-agnews (agnews), top k"]
    assert any("fine-tuned" in n for n in names) and any("base encoder" in n for n in names)
    both = AblationResult.combine([restore_result, restore_result])
    assert len(both.rows) == 2 * len(restore_result.rows)


def test_mismatched_base_is_refused_with_a_clear_error(ft_dir, tmp_path):
    deeper = build_tiny_bert(tmp_path / "deeper", num_layers=3)
    with pytest.raises(ModelError, match="num_hidden_layers 2 vs 3"):
        restore_layers(ft_dir, deeper, ks=[0])
    with pytest.raises(ConfigError, match="from 0 to the model's 2 layers"):
        restore_layers(ft_dir, ks=[3])


def test_recorded_data_that_changed_is_refused(ft_dir, tmp_path):
    from bert_repro.ablate import recorded_eval_data

    record = json.loads((ft_dir / "finetune.json").read_text())
    shorter = tmp_path / "news.csv"
    shorter.write_text("label,title,description\n" + "\n".join(keyword_rows(60, 0)) + "\n")
    record["settings"]["data"]["file"] = str(shorter)
    with pytest.raises(DataError, match="data changed"):
        recorded_eval_data(record)
    record["settings"]["data"]["file"] = str(tmp_path / "gone.csv")
    with pytest.raises(DataError, match="is not there"):
        recorded_eval_data(record)


# --- freeze --------------------------------------------------------------------------------


def test_freeze_keeps_the_bottom_bit_identical_and_trains_the_rest(
    tiny_bert_dir, news_csv, data, tmp_path
):
    """Through ``bert-repro ablate freeze`` (which calls freeze_sweep) with the models kept."""
    from bert_repro.cli import main
    from bert_repro.models import load_bert

    out = tmp_path / "freeze"
    argv = ["ablate", "freeze", "agnews", "--model", str(tiny_bert_dir), "--data", str(news_csv),
            "--ks", "1", "--max-steps", "4", "--batch-size", "16", "--max-seq-length", "16",
            "--learning-rate", "1e-2", "--save-models", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    base = encoder_arrays(load_bert(tiny_bert_dir)[0])
    trained = encoder_arrays(load_bert(out / "models" / "freeze-1")[0])
    for key, value in trained.items():
        if variable_part(key) in ("embeddings", "layer_0"):
            np.testing.assert_array_equal(value, base[key], err_msg=key)
        else:  # layer_1 and the pooler trained
            assert not np.array_equal(value, base[key]), f"{key} did not train"
    model, _, record = load_finetuned(out / "models" / "freeze-1")
    assert record["frozen_parts"] == ["embeddings", "layer_0"]
    assert record["settings"]["config"]["freeze_layers"] == 1
    assert record["settings"]["data"]["n_eval"] == len(data.eval)  # read as `finetune` reads it

    saved = json.loads((out / "results.json").read_text())
    n_trainable = saved["meta"]["settings"]["runs"]["1"]["trainable_weights"]
    frozen = sum(v.size for k, v in base.items() if variable_part(k) in ("embeddings", "layer_0"))
    head = sum(w.shape.num_elements() for w in model.head.weights)
    assert n_trainable == sum(v.size for v in base.values()) - frozen + head
    rows = saved["rows"]
    assert [(r["mode"], r["k"], r["direction"], r["parts"]) for r in rows] == [
        ("freeze", 1, "bottom", "embeddings+layer_0")
    ]
    assert rows[0]["value"] == record["metrics"]["accuracy"]
    assert saved["summary"]["levels"] == []  # no k = 0 run, no fine-tuned level
    assert (out / "results.csv").is_file() and (out / "figures" / "freeze_accuracy.html").is_file()


def test_freeze_scores_test_examples_only_for_kept_models(
    tiny_bert_dir, data, tmp_path, monkeypatch
):
    """The rows hold the evaluation metric; test examples are scored only when the models are
    kept (their finetune.json records it), and leaving them out changes no row."""
    import dataclasses

    from bert_repro.finetune.tasks import ClassificationTask

    seen = []
    real = ClassificationTask.evaluate

    def counting(self, model, tokenizer, examples, config):
        seen.append(len(examples))
        return real(self, model, tokenizer, examples, config)

    monkeypatch.setattr(ClassificationTask, "evaluate", counting)
    with_test = dataclasses.replace(data, test=list(data.eval[:7]))
    dropped = freeze_sweep("agnews", tiny_bert_dir, data=with_test, ks=[1], config=_config())
    assert seen == [len(data.eval)]
    kept = freeze_sweep(
        "agnews", tiny_bert_dir, data=with_test, ks=[1], config=_config(), models_dir=tmp_path
    )
    assert seen == [len(data.eval), len(data.eval), 7]
    assert "test_metrics" in load_finetuned(tmp_path / "freeze-1")[2]
    for a, b in zip(dropped.rows, kept.rows, strict=True):
        assert a["metric"] == b["metric"]
        assert a["value"] == pytest.approx(b["value"], abs=1e-6)


def test_freeze_layers_is_checked(tiny_bert):
    with pytest.raises(ConfigError, match="freeze_layers=-1"):
        FinetuneConfig(learning_rate=1e-3, freeze_layers=-1)
    with pytest.raises(ConfigError, match="must be an int"):
        FinetuneConfig(learning_rate=1e-3, freeze_layers=1.5)
    encoder, _ = tiny_bert
    with pytest.raises(ConfigError, match="freeze_layers=3"):
        freeze_bottom(encoder, 3)  # refused before anything is changed
    assert all(w.trainable for w in encoder.weights)


def test_cli_restore_rejects_a_folder_without_a_record(tmp_path, capsys):
    from bert_repro.cli import main

    assert main(["ablate", "restore", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "finetune.json" in capsys.readouterr().err
