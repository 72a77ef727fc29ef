"""Numerical edges (issue 8): zero vectors, constant inputs, one- and two-word sentences, NaN
and inf. Every case gives a defined (documented) value or a clear error, never a number made of
rounding noise and never a NaN turned into a plausible score."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from bert_repro.errors import DataError, ModelError
from bert_repro.io import atomic_write_json
from bert_repro.ops import cosine_similarity, masked_mean, pairwise_cosine, pool_wordpieces
from bert_repro.plot.similarity import correlation, linear_cka, mean_token_cosine, rsa
from bert_repro.probe.metrics import (
    depth_metrics,
    distance_metrics,
    dspr,
    nspr,
    root_accuracy,
    row_spearman,
    uuas,
)
from bert_repro.probe.sweep import rows_to_csv
from bert_repro.treebank import tree_depths, tree_distances

CHAIN5 = tree_distances([2, 3, 0, 3, 4])  # 1 <- 2 <- 3 (root) -> 4 -> 5
DEPTH5 = tree_depths([2, 3, 0, 3, 4])
ONE = tree_distances([0])
TWO = tree_distances([0, 1])


# --------------------------------------------------------------------------- probe metrics


def test_one_and_two_word_sentences():
    assert ONE.tolist() == [[0]] and TWO.tolist() == [[0, 1], [1, 0]]
    # one word has no edge: UUAS over one-word sentences alone is undefined (NaN), ...
    assert math.isnan(uuas([np.zeros((1, 1))], [ONE]))
    # ... and they add nothing to a corpus that has edges
    assert uuas([np.zeros((1, 1)), TWO.astype(float)], [ONE, TWO]) == 1.0
    # a two-word sentence has one possible tree: always found, even by constant predictions
    assert uuas([np.zeros((2, 2))], [TWO]) == 1.0
    # the root of a one-word sentence is its word; of a two-word one, the shallower word
    assert root_accuracy([np.array([3.0])], [np.array([0])]) == 1.0
    assert root_accuracy([np.array([0.1, 2.0]), np.array([5.0, 1.0])], [[0, 1], [0, 1]]) == 0.5
    # Spearman metrics average lengths 5..50 only: short sentences alone give NaN (no length)
    assert math.isnan(dspr([TWO.astype(float), ONE.astype(float)], [TWO, ONE]))
    assert math.isnan(nspr([np.array([0.0, 1.0])], [np.array([0, 1])]))


def test_constant_predictions_are_reported_as_nan_not_hidden():
    """A collapsed probe (constant rows) has an undefined Spearman: NaN, as the reference."""
    flat = np.ones((5, 5)) - np.eye(5)  # all off-diagonal distances equal
    assert np.isnan(row_spearman(flat, CHAIN5)).sum() == 0  # the diagonal 0 still ranks
    assert math.isnan(dspr([np.zeros((5, 5))], [CHAIN5]))
    assert math.isnan(nspr([np.full(5, 2.0)], [DEPTH5]))
    # UUAS and root accuracy stay defined: ties break in a fixed (row-major / first) order
    assert 0.0 <= uuas([np.zeros((5, 5))], [CHAIN5]) <= 1.0
    assert root_accuracy([np.zeros(5)], [DEPTH5]) == 0.0  # first word chosen, root is word 3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_predictions_are_an_error_naming_the_sentence(bad):
    good_d, good_h = CHAIN5.astype(float), DEPTH5.astype(float)
    pred_d = good_d.copy()
    pred_d[0, 2] = pred_d[2, 0] = bad
    pred_h = good_h.copy()
    pred_h[1] = bad
    for fn, pred, gold in (
        (uuas, [good_d, pred_d], [CHAIN5, CHAIN5]),
        (dspr, [good_d, pred_d], [CHAIN5, CHAIN5]),
        (nspr, [good_h, pred_h], [DEPTH5, DEPTH5]),
        (root_accuracy, [good_h, pred_h], [DEPTH5, DEPTH5]),
    ):
        with pytest.raises(DataError, match="sentence 1 hold NaN or inf"):
            fn(pred, gold)
    with pytest.raises(DataError):
        distance_metrics([pred_d], [CHAIN5])
    with pytest.raises(DataError):
        depth_metrics([pred_h], [DEPTH5])


def test_nan_would_otherwise_look_like_a_score():
    """Why the check exists: sorting and argmin treat NaN as a value."""
    pred = np.full(5, np.nan)
    assert int(np.argmin(pred)) == 0  # a "predicted root" out of nothing
    d = np.full((5, 5), np.nan)
    assert np.argsort(d[np.triu_indices(5, 1)], kind="stable").size == 10  # a "tree"


def test_undefined_metrics_are_null_in_json_and_empty_in_csv(tmp_path):
    row = {"model": "m", "layer": 0, "kind": "distance", "rank": 4, "uuas": 0.5, "dspr": math.nan}
    path = atomic_write_json(tmp_path / "r.json", {"results": [row]})
    text = path.read_text()
    assert "NaN" not in text and json.loads(text)["results"][0]["dspr"] is None
    lines = rows_to_csv([row]).splitlines()
    assert "nan" not in lines[1].lower() and ",0.5,," in lines[1]


# --------------------------------------------------------------------------- similarity


@pytest.mark.parametrize("value", [0.0, 0.1, 0.3, 1 / 3, 7.7, 1e8 + 0.1])
@pytest.mark.parametrize("n", [3, 7, 10, 100])
def test_constant_or_zero_inputs_give_nan_not_rounding_noise(value, n):
    rng = np.random.default_rng(n)
    x = np.full((n, 5), value)
    y = rng.normal(size=(n, 4))
    for got in (linear_cka(x, y), linear_cka(y, x), rsa(x, y), rsa(y, x, "spearman")):
        assert math.isnan(got), got
    assert math.isnan(correlation(np.full(12, value), rng.normal(size=12)))
    assert math.isnan(correlation(rng.normal(size=12), np.full(12, value), "spearman"))


def test_constant_columns_do_not_add_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 6))
    padded = np.concatenate([x, np.full((20, 3), 0.1)], axis=1)  # constant extra features
    assert linear_cka(padded, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x + 1e6) == pytest.approx(1.0, abs=1e-9)  # a shift is not a change
    assert rsa(x, x) == pytest.approx(1.0)


def test_nan_or_inf_inputs_are_an_error():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    x[2, 1] = np.nan
    for fn in (linear_cka, rsa):
        with pytest.raises(DataError, match="NaN or inf"):
            fn(x, y)
        with pytest.raises(DataError, match="NaN or inf"):
            fn(y, np.where(np.isnan(x), np.inf, x))
    with pytest.raises(DataError, match="NaN or inf"):
        correlation(np.array([1.0, np.nan, 2.0]), np.arange(3.0))
    with pytest.raises(DataError, match="at least 2 items"):
        linear_cka(x[:1], y[:1])


def test_mean_token_cosine_refuses_nan_at_counted_positions_only():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    b = a.copy()
    mask = np.ones((3, 4), dtype=bool)
    mask[1, 3] = False  # padding
    b[:, 1, 3] = np.nan  # NaN at a padding position is ignored
    mean, counts = mean_token_cosine(a, b, mask)
    np.testing.assert_allclose(mean, 1.0, atol=1e-6)
    assert counts.tolist() == [4, 3, 4]
    b[1, 2, 0] = np.inf
    with pytest.raises(DataError, match="layer index 1, text row 2, position 0"):
        mean_token_cosine(a, b, mask)


# --------------------------------------------------------------------------- ops


def test_zero_vectors_have_cosine_zero():
    z, v = np.zeros(4), np.array([1.0, 2.0, 0.0, -1.0])
    assert cosine_similarity(z, v) == 0.0 and cosine_similarity(z, z) == 0.0
    assert cosine_similarity(v, v) == pytest.approx(1.0)
    m = pairwise_cosine(np.stack([z, v, z]))
    assert np.isfinite(m).all() and m[0].tolist() == [0.0, 0.0, 0.0]
    tiny = np.full(4, 1e-30)  # |x||y| below eps: the denominator is clamped, no blow-up
    assert 0.0 <= cosine_similarity(tiny, tiny) < 1e-40
    # documented: NaN in, NaN out (the metrics above refuse it)
    assert math.isnan(float(cosine_similarity(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))))


def test_empty_masks_and_wordless_words_give_zero_not_nan():
    x = np.ones((2, 3, 4))
    out = masked_mean(x, np.zeros((2, 3)))
    assert out.shape == (2, 4) and (out == 0).all()
    pooled = pool_wordpieces(np.ones((5, 4)), np.array([-1, 0, 0, 2, -1]), n_words=3)
    assert pooled[1].tolist() == [0.0] * 4 and np.isfinite(pooled).all()


# --------------------------------------------------------------------------- end to end


TEXTS = ["the dog said no", "a good day", "the man and the woman were at the bank"]
NAN = r"gives NaN or inf hidden states, first at hidden state "
NAN_AT = r"gives NaN or inf hidden states, first at hidden state 1 \(0 = embedding output\) for "


@pytest.fixture(scope="module")
def broken_dir(tiny_bert_dir, tmp_path_factory):
    """The tiny BERT with one NaN in encoder layer 1's output LayerNorm, saved as a folder:
    hidden state 0 is finite, 1 has one NaN column, 2 is all NaN."""
    from bert_repro.models import load_bert

    model, tok = load_bert(tiny_bert_dir)
    gamma = next(w for w in model.weights if "layer_._0/output/LayerNorm/gamma" in w.name)
    values = gamma.numpy()
    values[3] = np.nan
    gamma.assign(values)
    folder = tmp_path_factory.mktemp("broken")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def broken(broken_dir):
    from bert_repro.models import load_bert

    return load_bert(broken_dir)


def _check_names_text(message: str, items) -> None:
    """The message's ``text i ('preview')`` is item i's preview."""
    from bert_repro.pipeline import describe_item

    found = re.search(r"(?:text|sentence) (\d+) \('(.*)'\)", message)
    assert found, message
    assert found.group(2) == describe_item(items[int(found.group(1))])


def test_hidden_states_refuse_nan_naming_model_layer_and_text(broken, broken_dir):
    from bert_repro.features import hidden_states

    model, tok = broken
    with pytest.raises(ModelError, match=f"^model {re.escape(str(broken_dir))} {NAN_AT}text ") as e:
        hidden_states(model, tok, TEXTS, progress=False)
    _check_names_text(str(e.value), TEXTS)
    (h0,) = hidden_states(model, tok, TEXTS[:1], layers=[0], progress=False)  # finite: fine
    assert np.isfinite(h0).all()


def test_word_features_refuse_nan_naming_the_sentence(broken):
    from bert_repro.features import word_features

    model, tok = broken
    sentences = [t.split() for t in TEXTS]
    with pytest.raises(ModelError, match=f"{NAN_AT}sentence ") as e:
        word_features(model, tok, sentences, layers=[2, 1], progress=False)
    _check_names_text(str(e.value), sentences)
    assert "hidden state 1" in str(e.value)  # the lowest layer, whatever order they were asked in


def test_comparator_names_the_model_that_gives_nan(tiny_bert, broken, broken_dir):
    from bert_repro.plot import BertComparator

    base, tok = tiny_bert
    comparator = BertComparator(base, {"broken": broken[0]}, tok, progress=False)
    name = re.escape(f"'broken' ({broken_dir})")
    with pytest.raises(ModelError, match=f"^model {name} {NAN_AT}text ") as e:
        comparator.compare(TEXTS, sample_tokens=10)
    _check_names_text(str(e.value), TEXTS)


def test_embeddings_studies_refuse_nan(broken, broken_dir, tmp_path, capsys):
    from bert_repro.cli import main
    from bert_repro.embeddings import norms_study, sentence_similarity, word_occurrences

    model, tok = broken
    with pytest.raises(ModelError, match=f"{NAN}2 "):  # the last layer only is extracted
        sentence_similarity(model, tok, TEXTS)
    with pytest.raises(ModelError, match=NAN_AT):
        word_occurrences(model, tok, TEXTS, "the", recipe="sum_all")
    table = tmp_path / "words.csv"
    table.write_text("word,definition\ndog,a good friend\n")
    with pytest.raises(ModelError, match=NAN):
        norms_study(model, tok, table)
    argv = ["embeddings", "similarity", "--model", str(broken_dir), "--out", str(tmp_path / "o")]
    assert main([*argv, "--text", TEXTS[0], "--text", TEXTS[1], "--word", "the"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gives NaN or inf hidden states" in err[0]
    assert not (tmp_path / "o" / "results.json").exists()


def test_the_cache_keeps_no_entry_of_nan_features(broken, tmp_path):
    from bert_repro.cache import cached_word_features

    model, tok = broken
    sentences = [t.split() for t in TEXTS]
    with pytest.raises(ModelError, match=NAN_AT):
        cached_word_features(model, tok, sentences, tmp_path, progress=False)
    assert not list(tmp_path.glob("*/meta.json"))  # no finished entry
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_first_non_finite_looks_at_real_positions_only():
    from bert_repro.features import first_non_finite

    out = np.zeros((3, 2, 4, 5), dtype=np.float32)
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    out[0, 1, 3, 2] = np.nan  # padding: ignored
    assert first_non_finite(out, mask) is None
    out[2, 0, 1, 0] = np.inf
    out[1, 1, 0, 4] = -np.inf
    assert first_non_finite(out, mask) == (1, 1)
    out[1, 0, 2, 1] = np.nan
    assert first_non_finite(out, mask) == (1, 0)
    assert first_non_finite(out, mask, layers=[12, 11, 10]) == (10, 0)  # the lowest layer
