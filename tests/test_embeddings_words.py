"""Word vectors, sentence vectors and the seed 002 dialogue question on tiny random BERTs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_tiny_bert

from bert_repro.embeddings import (
    corpus_word_vectors,
    cosine_similarity,
    model_sentence_pooling,
    occurrence_similarity,
    occurrence_vectors,
    pooler_output,
    sentence_features,
    sentence_similarity,
    sentence_vectors,
    text_word_index,
    word_embedding,
    word_embedding_by_word,
    word_occurrences,
    word_positions,
)
from bert_repro.errors import ConfigError, DataError
from bert_repro.features import hidden_states
from bert_repro.pipeline import encode_texts

# The dialogue of seed notebook 002 (Q1-Q5): BERT gets (question, answer) pairs.
NORMAL_PERSON = ["what do you do when you have free time?", "(what a nerd...) coding?"]
NERD = [
    "I code. code frees my minds, body and soul.",
    "Yes. coding is the best thing to do in the free time.",
]


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory):
    """A tiny random BERT with 4 encoder layers, so the *_last4 recipes apply."""
    from bert_repro.models import load_bert

    return load_bert(build_tiny_bert(tmp_path_factory.mktemp("tiny4"), num_layers=4, seed=3))


@pytest.fixture(scope="module")
def dialogue(tiny4):
    """The seed's own forward pass: padded batch of text pairs, every hidden state."""
    model, tok = tiny4
    enc = tok(NORMAL_PERSON, NERD, padding="longest", return_tensors="tf")
    out = model(**enc, output_hidden_states=True)
    hs = [h.numpy() for h in out.hidden_states]  # L+1 arrays (B, T, H), as the seed has them
    return enc["input_ids"].numpy(), enc["attention_mask"].numpy(), hs


def seed_cosine(x, y, small_number=1e-8):
    """The seed's corrected ``cosine_similarity_manual``."""
    l2 = lambda a: np.sqrt(np.power(a, 2).sum())  # noqa: E731
    return np.inner(x, y) / max(l2(x) * l2(y), small_number)


def test_seed_dialogue_code_and_coding_both_ways(tiny4, dialogue):
    model, tok = tiny4
    ids, mask, hs = dialogue
    # Explicit NumPy, the seed's answer cells: token-id match, then layer indexing.
    code_id = tok.convert_tokens_to_ids("code")
    idx = np.flatnonzero(ids[0] == code_id)
    assert len(idx) == 2
    n = len(hs)
    x = sum(hs[i][0, idx[0], :] for i in range(n - 1, n - 1 - 4, -1))  # sum_last4
    y = sum(hs[i][0, idx[-1], :] for i in range(n - 1, n - 1 - 4, -1))
    explicit_code = seed_cosine(x, y)
    coding_id = tok.convert_tokens_to_ids("coding")
    idx2 = np.flatnonzero(ids[1] == coding_id)
    assert len(idx2) == 2
    x = np.concatenate([hs[i][1, idx2[0], :] for i in range(n - 1, n - 1 - 4, -1)])
    y = np.concatenate([hs[i][1, idx2[-1], :] for i in range(n - 1, n - 1 - 4, -1)])
    explicit_coding = seed_cosine(x, y)

    # Through the API: one text's (L+1, T, H) stack, words found by their wordpieces.
    stack = np.stack(hs)  # (L+1, B, T, H)
    t0, t1 = int(mask[0].sum()), int(mask[1].sum())
    text0, text1 = stack[:, 0, :t0], stack[:, 1, :t1]
    p = word_positions(tok, ids[0, :t0], "code")
    assert [q.tolist() for q in p] == [[i] for i in idx]
    api_code = cosine_similarity(
        word_embedding(text0, p[0], "sum_last4"), word_embedding(text0, p[1], "sum_last4")
    )
    vecs = occurrence_vectors(text1, ids[1, :t1], tok, "coding", "concat_last4")
    api_coding = cosine_similarity(vecs[0], vecs[1])
    assert api_code == pytest.approx(explicit_code, abs=1e-6)
    assert api_coding == pytest.approx(explicit_coding, abs=1e-6)
    assert -1 <= api_code < 0.9999 and -1 <= api_coding < 0.9999  # different contexts


def test_foundation_path_matches_explicit_indexing(tiny4):
    """word_occurrences over the batched extraction == explicit indexing of a direct call."""
    model, tok = tiny4
    texts = [NERD[0], "the dog said no", NERD[1], "code code code"]
    direct = {}
    for t in (0, 3):  # one direct forward pass per text holding the word, no padding
        out = model(**tok(texts[t], return_tensors="tf"), output_hidden_states=True)
        direct[t] = np.stack([h.numpy()[0] for h in out.hidden_states])
    for recipe in ("sum_all", "concat_last4", -2):
        occ = word_occurrences(model, tok, texts, "code", recipe, max_batch=2)
        assert occ.text_index.tolist() == [0, 0, 3, 3, 3]
        for v, t, pos in zip(occ.vectors, occ.text_index, occ.positions, strict=True):
            np.testing.assert_allclose(v, word_embedding(direct[t], pos, recipe), atol=2e-5)


def test_split_word_found_by_all_its_pieces(tiny4):
    model, tok = tiny4
    text = "my minds and his mind"  # 'minds' -> m ##i ##n ##d ##s, 'mind' -> m ##i ##n ##d
    hs = hidden_states(model, tok, [text], progress=False)[0]
    ids = encode_texts(tok, [text])[0].input_ids
    (minds,) = word_positions(tok, ids, "minds")
    (mind,) = word_positions(tok, ids, "mind")  # not the start of 'minds'
    assert len(minds) == 5 and len(mind) == 4 and mind[0] > minds[-1]
    for how, ref in (
        ("mean", hs[-1, minds].mean(0)),
        ("first", hs[-1, minds[0]]),
        ("last", hs[-1, minds[-1]]),
    ):
        got = occurrence_vectors(hs, ids, tok, "Minds", "last_layer", pooling=how)
        np.testing.assert_allclose(got[0], ref, atol=1e-6)


def test_missing_word_unknown_recipe_empty_list(tiny4):
    model, tok = tiny4
    ids = encode_texts(tok, ["the dog said no"])[0].input_ids
    with pytest.raises(DataError, match="does not occur"):
        word_positions(tok, ids, "cat")
    with pytest.raises(DataError, match="does not occur in any of the 2 text"):
        word_occurrences(model, tok, ["the dog", "a cat"], "code")
    with pytest.raises(DataError, match="vocabulary"):
        word_positions(tok, ids, "\u00e9\u00e9\u4e2d")  # -> [UNK]
    with pytest.raises(DataError, match="empty"):
        word_occurrences(model, tok, [], "code")
    with pytest.raises(DataError, match="empty"):
        sentence_features(model, tok, [], ("cls",))
    with pytest.raises(DataError, match="empty"):
        sentence_similarity(model, tok, ["a dog"], [])
    with pytest.raises(DataError, match="single string"):
        word_occurrences(model, tok, "the dog", "dog")
    with pytest.raises(ConfigError, match="first_layer"):
        word_occurrences(model, tok, ["the dog"], "dog", "sum_last_4")
    with pytest.raises(ConfigError):
        sentence_features(model, tok, ["the dog"], ("max",))


def test_occurrence_similarity_matrix(tiny4):
    model, tok = tiny4
    occ, m = occurrence_similarity(model, tok, list(NERD), "code", "mean_last4")
    assert len(occ) == 2 and m.shape == (2, 2)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-6)
    assert m[0, 1] == pytest.approx(cosine_similarity(occ.vectors[0], occ.vectors[1]))


def test_corpus_word_vectors(tiny4):
    model, tok = tiny4
    texts = ["I code.", "the dog said no to the minds"]
    out = corpus_word_vectors(model, tok, texts, "sum_all", pooling="first")
    assert out[0].words == ("I", "code", ".")
    assert out[1].words[-1] == "minds"
    hs = hidden_states(model, tok, [texts[1]], progress=False)[0]
    ids = encode_texts(tok, [texts[1]])[0].input_ids
    (minds,) = word_positions(tok, ids, "minds")
    np.testing.assert_allclose(
        out[1].vectors[-1], word_embedding(hs, minds, "sum_all", pooling="first"), atol=2e-5
    )


def test_sentence_vectors_padding_invariant_and_pooler(tiny_bert):
    model, tok = tiny_bert
    texts = ["the dog", "a man said that the river bank had no money at night", "code"]
    feats = sentence_features(model, tok, texts, ("cls", "mean", "pooler"), max_batch=3)
    for i, text in enumerate(texts):  # each text alone: no padding at all
        enc = tok(text, return_tensors="tf")
        out = model(**enc)
        last = out.last_hidden_state.numpy()[0]
        np.testing.assert_allclose(feats["cls"][i], last[0], atol=1e-5)
        np.testing.assert_allclose(feats["mean"][i], last.mean(0), atol=1e-5)
        np.testing.assert_allclose(feats["pooler"][i], out.pooler_output.numpy()[0], atol=1e-5)
    np.testing.assert_allclose(pooler_output(model, feats["cls"]), feats["pooler"], atol=1e-6)


def test_sentence_similarity_self_is_one(tiny_bert):
    model, tok = tiny_bert
    texts = ["the dog", "the dog", "money in the bank"]
    sims = sentence_similarity(model, tok, texts)
    assert set(sims) == {"cls", "mean", "pooler"}
    for m in sims.values():
        assert m.shape == (3, 3)
        np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-6)
        assert m[0, 1] == pytest.approx(1.0, abs=1e-6)
    cross = sentence_similarity(model, tok, texts[:1], texts[1:], hows=("mean",))
    assert cross["mean"].shape == (1, 2) and cross["mean"][0, 0] == pytest.approx(1.0, abs=1e-6)


def test_word_by_number_equals_word_by_its_pieces(tiny4):
    """Word 1 of "the riverbank" is all of "riverbank"'s pieces; counting starts after [CLS]."""
    model, tok = tiny4
    text = "the riverbank is here"
    hs = hidden_states(model, tok, [text])[0]
    word_index, words = text_word_index(tok, text)
    assert words[1] == "riverbank" and word_index[0] == -1 == word_index[-1]
    pieces = np.flatnonzero(word_index == 1)
    for recipe in ("last_layer", "sum_last4", 2):
        np.testing.assert_array_equal(
            word_embedding_by_word(hs, word_index, 1, recipe),
            word_embedding(hs, pieces, recipe),
        )
    first = word_embedding_by_word(hs, word_index, 0, "last_layer")
    np.testing.assert_array_equal(first, hs[-1, 1])  # word 0 is wordpiece 1 ([CLS] is 0)
    with pytest.raises(DataError, match="4 words"):
        word_embedding_by_word(hs, word_index, 4)
    with pytest.raises(DataError, match="text_word_index"):
        word_embedding_by_word(hs, word_index[:-1], 0)


def test_sentence_vectors_default_pools_as_the_model_was_trained(tiny_bert, tmp_path):
    """MiniLM's folder asks for mean pooling (sentence-transformers' config); a plain BERT
    has no such config and gets [CLS]; a folder asking for [CLS] gets [CLS]."""
    from bert_repro.models import default_model_path

    assert model_sentence_pooling(default_model_path()) == "mean"
    model, tok = tiny_bert
    assert model_sentence_pooling(model) == "cls"
    texts = ["the dog", "money in the bank"]
    np.testing.assert_array_equal(
        sentence_vectors(model, tok, texts), sentence_vectors(model, tok, texts, "cls")
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(
        '[{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]'
    )
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert model_sentence_pooling(tmp_path) == "cls"
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    assert model_sentence_pooling(tmp_path) == "mean"
