"""BertComparator on a tiny random BERT and a copy with a perturbed top layer."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from bert_repro.errors import DataError, InputTooLongError, ModelError
from bert_repro.plot import BertComparator, ComparisonResult

TEXTS = [
    "the dog said hello to the cat",
    "a man and a woman were in the bank",
    "river money good bad day night",
    "python code is fun when it works",
    "i",
    "they will not have what we had, or would they?",
    "zebras quickly jumped over lazy foxes",
]


@pytest.fixture(scope="module")
def perturbed(tiny_bert_dir):
    """A second copy of the tiny BERT with noise added to its top encoder layer only."""
    from bert_repro.models import load_bert

    model, _ = load_bert(tiny_bert_dir)
    top = model.config.num_hidden_layers - 1
    rng = np.random.default_rng(0)
    hit = 0
    for w in model.weights:
        if f"layer_._{top}/" in w.name:
            w.assign(w.numpy() + rng.normal(0, 0.1, w.shape).astype(np.float32))
            hit += 1
    assert hit > 0
    return model


def reference_cosine(base, other, tokenizer, texts):
    """NumPy reference, one text at a time (no padding), direct model calls.

    Returns:
        ``{include_special: (K,) mean over texts of the mean over their wordpieces}``.
    """
    per_text = {False: [], True: []}
    for text in texts:
        enc = tokenizer(text, return_tensors="tf")
        a = np.stack(base(enc, output_hidden_states=True).hidden_states)[:, 0]  # (K, T, H)
        b = np.stack(other(enc, output_hidden_states=True).hidden_states)[:, 0]
        cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        per_text[True].append(cos.mean(axis=1))  # (K,)
        if cos.shape[1] > 2:
            per_text[False].append(cos[:, 1:-1].mean(axis=1))  # without [CLS], [SEP]
    return {k: np.mean(v, axis=0) for k, v in per_text.items()}


def test_model_with_itself_is_one_everywhere(tiny_bert):
    model, tok = tiny_bert
    result = BertComparator(model, model, tok, progress=False).compare(TEXTS, sample_tokens=40)
    k = model.config.num_hidden_layers + 1
    for values in (result.cosine, result.rsa, result.cka):
        assert values.shape == (1, k)
        np.testing.assert_allclose(values, 1.0, atol=1e-6)
    assert result.n_texts == len(TEXTS) and result.n_sampled_tokens == 40


def test_masked_average_matches_numpy_reference(tiny_bert, perturbed):
    base, tok = tiny_bert
    bc = BertComparator(base, perturbed, tok, max_batch=3, progress=False)
    ref = reference_cosine(base, perturbed, tok, TEXTS)
    for special in (False, True):
        got = bc.get_layer_cos_sim_in_data(TEXTS, include_special=special)
        np.testing.assert_allclose(got, ref[special], rtol=1e-5)
        # only the top layer was perturbed: below it the models agree exactly
        np.testing.assert_allclose(got[:-1], 1.0, atol=1e-6)
        assert got[-1] < 0.999


def test_special_tokens_count_only_when_included(tiny_bert, tiny_bert_dir):
    """A copy whose [CLS] and [SEP] input embeddings are swapped for other words' differs from
    the base at the embedding output in those two positions only: without them the layer-0
    cosine is exactly 1, with them it is clearly below (by construction, whatever the seed)."""
    from bert_repro.models import load_bert

    base, tok = tiny_bert
    other, _ = load_bert(tiny_bert_dir)
    table = other.bert.embeddings.weight
    rows = table.numpy()
    for special, word in (("[CLS]", "dog"), ("[SEP]", "cat")):
        rows[tok.convert_tokens_to_ids(special)] = rows[tok.convert_tokens_to_ids(word)]
    table.assign(rows)
    bc = BertComparator(base, other, tok, progress=False)
    without = bc.get_layer_cos_sim_in_data(TEXTS, include_special=False)
    with_special = bc.get_layer_cos_sim_in_data(TEXTS, include_special=True)
    np.testing.assert_allclose(without[0], 1.0, atol=1e-6)
    ref = reference_cosine(base, other, tok, TEXTS)
    np.testing.assert_allclose(with_special, ref[True], rtol=1e-5)
    assert with_special[0] < 0.99


def test_padding_and_batch_composition_do_not_matter(tiny_bert, perturbed):
    base, tok = tiny_bert
    results = [
        BertComparator(base, perturbed, tok, max_batch=bs, progress=False).compare(
            TEXTS, sample_tokens=25, seed=3
        )
        for bs in (1, 4, 32)
    ]
    for r in results[1:]:
        for metric in ("cosine", "rsa", "cka"):
            np.testing.assert_allclose(getattr(r, metric), getattr(results[0], metric), atol=1e-6)
        assert r.n_tokens == results[0].n_tokens
    # the token sample is a parameter: another seed samples other tokens
    other = BertComparator(base, perturbed, tok, progress=False).compare(
        TEXTS, sample_tokens=25, seed=4
    )
    assert not np.allclose(other.rsa[0, -1], results[0].rsa[0, -1])


def test_several_finetuned_models_in_one_pass(tiny_bert, perturbed):
    base, tok = tiny_bert
    bc = BertComparator(base, {"same": base, "noisy": perturbed}, tok, progress=False)
    result = bc.compare(TEXTS, n_samples=5, sample_tokens=30)
    assert result.names == ("same", "noisy")
    np.testing.assert_allclose(result.cosine[0], 1.0, atol=1e-6)
    single = BertComparator(base, perturbed, tok, progress=False).compare(
        TEXTS, n_samples=5, sample_tokens=30
    )
    for metric in ("cosine", "rsa", "cka"):
        np.testing.assert_allclose(getattr(result, metric)[1], getattr(single, metric)[0])
        np.testing.assert_allclose(result.metric(metric, "noisy"), getattr(single, metric)[0])
    assert result.n_texts == 5
    # rsa and cka drop at the perturbed top layer only
    assert result.rsa[1, -1] < 0.999 and result.cka[1, -1] < 0.999
    np.testing.assert_allclose(result.cka[1, :-1], 1.0, atol=1e-6)
    frame = result.to_frame()
    assert list(frame.columns) == ["model", "layer", "cosine", "rsa", "cka"]
    assert len(frame) == 2 * (base.config.num_hidden_layers + 1)
    list_names = BertComparator(base, [base, perturbed], tok, progress=False).names
    assert list_names == ("finetuned_1", "finetuned_2")


def test_seed_call_on_a_wiki40b_split(tiny_bert, perturbed, tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    article = (
        "\n_START_ARTICLE_\nDogs\n_START_SECTION_\nLife\n_START_PARAGRAPH_\n"
        "the dog said hello_NEWLINE_to the cat\n_START_PARAGRAPH_\na man and a woman"
    )

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {"text": [article, article], "wikidata_id": ["Q1", "Q2"], "version_id": ["1", "2"]}
        )

    base, tok = tiny_bert
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        wiki = tfds.load("wiki40b/en", split="train", data_dir=str(tmp_path))
        bc = BertComparator(base, perturbed, tok)  # the seed's call
        sims = bc.get_layer_cos_sim_in_data(wiki)
    paragraphs = ["the dog said hello\nto the cat", "a man and a woman"] * 2
    assert sims.shape == (base.config.num_hidden_layers + 1,)
    ref = reference_cosine(base, perturbed, tok, paragraphs)[False]
    np.testing.assert_allclose(sims, ref, rtol=1e-5)


def test_incompatible_models_are_refused_before_any_work(tiny_bert):
    from transformers import BertConfig

    base, tok = tiny_bert
    cfg = base.config.to_dict()

    def fake(**change):  # a config only: any forward pass would crash
        return types.SimpleNamespace(config=BertConfig(**{**cfg, **change}))

    for field, value in (
        ("num_hidden_layers", 3),
        ("hidden_size", 48),
        ("vocab_size", cfg["vocab_size"] + 1),
    ):
        with pytest.raises(ModelError, match=f"{field}={value} but the base model has"):
            BertComparator(base, {"odd": fake(**{field: value})}, tok)
    small = types.SimpleNamespace(config=BertConfig(**{**cfg, "vocab_size": 10}))
    with pytest.raises(ModelError, match="does not belong|do not belong"):
        BertComparator(small, small, tok)
    with pytest.raises(ModelError, match="not a transformers TFBertModel"):
        BertComparator(base, "models/mnli", tok)


def test_a_finetune_with_fewer_positions_compares_texts_that_fit_both(tiny_bert, tmp_path):
    """A fine-tune saved with 16 positions beside a 64-position base: texts that fit both are
    compared; a text that fits only the base is named with the model that limits it (before:
    a raw TensorFlow error from the fine-tune's position embedding lookup)."""
    from conftest import build_tiny_bert

    from bert_repro.features import iter_batches
    from bert_repro.models import load_bert

    base, tok = tiny_bert
    folder = build_tiny_bert(tmp_path / "short", max_positions=16)
    short, _ = load_bert(folder)
    fits, too_long = "the dog said no", " ".join(["dog"] * 20)  # 6 and 22 wordpieces
    assert len(tok(fits)["input_ids"]) <= 16 < len(tok(too_long)["input_ids"]) <= 64
    bc = BertComparator(base, {"short": short}, tok, progress=False)
    result = bc.compare([fits, "a good day"], sample_tokens=4)
    assert np.isfinite(result.cosine).all()
    named = (
        rf"text 1 \('dog dog.*'\) has 22 wordpieces .*, more than 16, "
        rf"the most model 'short' \({folder}\) accepts \(the smallest of the models\)"
    )
    with pytest.raises(InputTooLongError, match=named):
        bc.compare([fits, too_long])
    with pytest.warns(UserWarning, match="skipping 1 of 2 texts longer than 16 wordpieces"):
        result = bc.compare([fits, too_long], too_long="skip", sample_tokens=4)
    assert result.n_skipped_too_long == 1 and result.n_texts == 1
    with pytest.raises(InputTooLongError, match=f"the most model {folder} accepts"):
        list(iter_batches([base, short], tok, [too_long], progress=False))


def test_bad_text_input(tiny_bert):
    base, tok = tiny_bert
    bc = BertComparator(base, base, tok, progress=False)
    with pytest.raises(DataError, match="empty"):
        bc.compare([])
    with pytest.raises(DataError, match="empty"):
        bc.get_layer_cos_sim_in_data(["", "   "])
    with pytest.raises(DataError, match="has a wordpiece to compare"):
        bc.compare(["\u200b", "\u0000"])
    long_text = " ".join(["dog"] * 100)  # the tiny model takes 64 positions
    with pytest.raises(InputTooLongError, match="text 1"):
        bc.compare(["a cat", long_text])
    with pytest.warns(UserWarning, match="skipping 1 of 3"):
        result = bc.compare(["a cat", long_text, "a dog"], too_long="skip", sample_tokens=4)
    assert result.n_skipped_too_long == 1 and result.n_texts == 2
    np.testing.assert_allclose(result.cosine, 1.0, atol=1e-6)
    with pytest.raises(DataError, match="all 1 texts are longer"), pytest.warns(UserWarning):
        bc.compare([long_text], too_long="skip")


def test_result_save_writes_json_csv_and_figures(tmp_path):
    result = ComparisonResult(
        names=("mnli", "squad"),
        cosine=np.array([[1.0, 0.9, 0.8], [1.0, 0.8, 0.5]]),
        rsa=np.array([[1.0, 0.95, 0.7], [1.0, 0.9, 0.4]]),
        cka=np.array([[1.0, 0.97, 0.9], [1.0, 0.96, 0.6]]),
        n_texts=10,
        settings={"n_samples": 10},
    )
    written = result.save(tmp_path, png=False, texts="txt:x.txt")
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "results.json",
            "results.csv",
            "cosine.html",
            "rsa.html",
            "cka.html",
            "overview.html",
        ]
    )
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["summary"]["models"]["squad"]["cosine"] == [1.0, 0.8, 0.5]
    assert data["meta"]["settings"]["texts"] == "txt:x.txt" and "versions" in data["meta"]
    assert data["meta"]["command"] == "compare" and data["meta"]["argv"] is None  # a library call
    squad = [r["cosine"] for r in data["rows"] if r["model"] == "squad"]
    assert squad == [1.0, 0.8, 0.5] and (tmp_path / "figures" / "cka.html").is_file()
    fig = result.figure("cka")
    assert [t.name for t in fig.data] == ["mnli", "squad"]
    assert list(fig.data[1].y) == [1.0, 0.96, 0.6]
    cos_only = ComparisonResult(names=("a",), cosine=np.ones((1, 3)))
    with pytest.raises(DataError, match="no 'rsa'"):
        cos_only.figure("rsa")


@pytest.mark.integration
def test_minilm_with_itself_on_ewt(minilm, ewt_dev):
    from bert_repro.text import conllu_texts

    model, tok = minilm
    texts = conllu_texts(ewt_dev)[:12]
    result = BertComparator(model, model, tok, progress=False).compare(texts, sample_tokens=100)
    assert result.cosine.shape == (1, model.config.num_hidden_layers + 1)
    for metric in ("cosine", "rsa", "cka"):
        np.testing.assert_allclose(getattr(result, metric), 1.0, atol=1e-5)
    assert result.n_texts == 12 and result.n_sampled_tokens == 100
