"""Recipes, word finding, similarity and sentence pooling as pure NumPy (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.embeddings import (
    RECIPES,
    combine_layers,
    cosine_similarity,
    find_word,
    pairwise_cosine,
    pool_sentences,
    recipe_layers,
    word_embedding,
)
from bert_repro.errors import ConfigError, DataError

L, T, H = 6, 9, 5  # 6 encoder layers -> 7 hidden-state tensors


@pytest.fixture
def hs() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(L + 1, T, H)).astype(np.float32)


def explicit(hs: np.ndarray, p: int, recipe) -> np.ndarray:
    """The seed notebook's computations, written out index by index."""
    if recipe == "first_layer":
        return hs[1][p]
    if recipe == "last_layer":
        return hs[L][p]
    if recipe == "sum_all":
        return sum(hs[k][p] for k in range(1, L + 1))
    if recipe == "sum_last4":
        return hs[L][p] + hs[L - 1][p] + hs[L - 2][p] + hs[L - 3][p]
    if recipe == "concat_last4":
        return np.concatenate([hs[L][p], hs[L - 1][p], hs[L - 2][p], hs[L - 3][p]])
    if recipe == "mean_last4":
        return (hs[L][p] + hs[L - 1][p] + hs[L - 2][p] + hs[L - 3][p]) / 4
    return hs[recipe][p]


@pytest.mark.parametrize("recipe", [*RECIPES, 0, 3, -1, -2])
def test_word_embedding_matches_explicit_indexing(hs, recipe):
    for p in (0, 4, T - 1):
        got = word_embedding(hs, p, recipe)
        np.testing.assert_allclose(got, explicit(hs, p, recipe), rtol=1e-6, atol=1e-6)


def test_recipe_layers_documented_indices():
    assert recipe_layers("first_layer", 13) == (1,)
    assert recipe_layers("last_layer", 13) == (12,)
    assert recipe_layers("sum_all", 13) == tuple(range(1, 13))  # embedding output excluded
    assert recipe_layers("sum_last4", 13) == (9, 10, 11, 12)
    assert recipe_layers("concat_last4", 13) == (12, 11, 10, 9)  # last layer first
    assert recipe_layers(0, 13) == (0,)
    assert recipe_layers(-1, 13) == (12,)


def test_concat_last4_width_and_order(hs):
    v = word_embedding(hs, 2, "concat_last4")
    assert v.shape == (4 * H,)
    np.testing.assert_array_equal(v[:H], hs[-1, 2])
    np.testing.assert_array_equal(v[-H:], hs[-4, 2])


def test_combine_layers_applies_to_every_position(hs):
    for recipe in RECIPES:
        full = combine_layers(hs, recipe)
        for p in range(T):
            np.testing.assert_allclose(full[p], explicit(hs, p, recipe), rtol=1e-6, atol=1e-6)


def test_subword_pooling_over_several_pieces(hs):
    pieces = [3, 4, 5]
    mean = word_embedding(hs, pieces, "sum_last4", pooling="mean")
    ref = np.mean([explicit(hs, p, "sum_last4") for p in pieces], axis=0)
    np.testing.assert_allclose(mean, ref, rtol=1e-5, atol=1e-6)
    first = word_embedding(hs, pieces, "concat_last4", pooling="first")
    np.testing.assert_allclose(first, explicit(hs, 3, "concat_last4"))
    last = word_embedding(hs, pieces, "last_layer", pooling="last")
    np.testing.assert_allclose(last, hs[-1, 5])


def test_input_arrays_are_not_modified(hs):
    before = hs.copy()
    for recipe in RECIPES:
        word_embedding(hs, [1, 2], recipe)
        combine_layers(hs, recipe)
    np.testing.assert_array_equal(hs, before)


def test_bad_recipe_and_positions(hs):
    with pytest.raises(ConfigError, match="sum_last4"):  # lists the valid ones
        word_embedding(hs, 1, "sum_last_four")
    with pytest.raises(ConfigError):
        word_embedding(hs, 1, "-1")  # layers are ints, not strings
    with pytest.raises(ConfigError, match="does not exist"):
        word_embedding(hs, 1, L + 1)
    with pytest.raises(ConfigError):
        word_embedding(hs, 1, "last_layer", pooling="max")
    with pytest.raises(DataError, match="outside"):
        word_embedding(hs, T, "last_layer")
    with pytest.raises(DataError):
        word_embedding(hs, [], "last_layer")
    with pytest.raises(DataError, match=r"\(L\+1, T, H\)"):
        word_embedding(hs[:, 0], 0, "last_layer")


def test_last4_refuses_models_with_fewer_than_4_layers():
    small = np.ones((3, 4, 2))  # 2 encoder layers
    with pytest.raises(ConfigError, match="at least 4 encoder"):
        word_embedding(small, 1, "sum_last4")
    np.testing.assert_allclose(word_embedding(small, 1, "sum_all"), [2.0, 2.0])


def test_find_word_whole_words_only():
    tokens = ["[CLS]", "i", "code", ".", "code", "##s", "free", "##s", "co", "##de", "[SEP]"]
    found = find_word(tokens, ["code"])
    assert [p.tolist() for p in found] == [[2]]  # "code ##s" is another word
    assert [p.tolist() for p in find_word(tokens, ["free", "##s"])] == [[6, 7]]
    assert find_word(tokens, ["free"]) == []
    assert [p.tolist() for p in find_word(tokens, ["co", "##de"])] == [[8, 9]]
    assert find_word(tokens, []) == []


def test_cosine_zero_vectors_and_seed_formula():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=7), rng.normal(size=7)
    seed = np.inner(x, y) / max(np.sqrt((x**2).sum()) * np.sqrt((y**2).sum()), 1e-8)
    assert cosine_similarity(x, y) == pytest.approx(seed)
    assert cosine_similarity(x, x) == pytest.approx(1.0)
    z = np.zeros(7)
    for a, b in ((z, x), (x, z), (z, z)):
        s = cosine_similarity(a, b)
        assert np.isfinite(s) and s == 0.0
    m = pairwise_cosine(np.stack([x, z, y]))
    assert np.all(np.isfinite(m)) and m[1].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(np.diag(m)[[0, 2]], 1.0)


def test_masked_mean_ignores_padding():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(3, 3))
    batch = rng.normal(size=(2, 5, 3)) * 100  # padding is garbage
    batch[0] = a
    batch[1, :3] = b
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    got = pool_sentences(batch, mask, "mean")
    np.testing.assert_allclose(got[0], a.mean(0))
    np.testing.assert_allclose(got[1], b.mean(0))
    np.testing.assert_array_equal(pool_sentences(batch, mask, "cls"), batch[:, 0])
    with pytest.raises(ConfigError):
        pool_sentences(batch, mask, "max")


@pytest.mark.parametrize("recipe", [*RECIPES, 0, -1])
def test_word_embedding_takes_the_recipe_by_keyword(hs, recipe):
    got = word_embedding(hs, [2, 3], recipe=recipe, pooling="first")
    np.testing.assert_allclose(got, explicit(hs, 2, recipe), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got, word_embedding(hs, [2, 3], recipe, pooling="first"))


def test_strategy_is_no_longer_a_recipe_keyword(hs):
    with pytest.raises(TypeError, match="strategy"):
        word_embedding(hs, 2, strategy="sum_last4")  # strategy= is a tf.distribute.Strategy


def test_recipe_names_come_from_the_literal_and_parse_from_the_command_line():
    from typing import get_args

    from bert_repro.embeddings import RecipeName
    from bert_repro.embeddings.recipes import parse_recipe

    assert RECIPES == get_args(RecipeName)
    assert [parse_recipe(name) for name in RECIPES] == list(RECIPES)
    assert (parse_recipe("-1"), parse_recipe(" 0 "), parse_recipe("7")) == (-1, 0, 7)
    for bad in ("top", "1.5", "--1", ""):
        with pytest.raises(ConfigError, match="recipe=.*'first_layer'.*<int layer index>"):
            parse_recipe(bad)
