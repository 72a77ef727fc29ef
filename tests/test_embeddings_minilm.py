"""The embeddings studies on the shipped MiniLM and the real data in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.embeddings import (
    cosine_similarity,
    decompose_text,
    max_abs_difference,
    norms_study,
    occurrence_vectors,
    read_labeled_csv,
    read_word_definitions,
    sentence_features,
    word_embedding,
    word_positions,
    word_token_ids,
)
from bert_repro.features import hidden_states

pytestmark = pytest.mark.integration

NORMAL_PERSON = ["what do you do when you have free time?", "(what a nerd...) coding?"]
NERD = [
    "I code. code frees my minds, body and soul.",
    "Yes. coding is the best thing to do in the free time.",
]


def test_seed_dialogue_on_minilm(minilm):
    model, tok = minilm
    enc = tok(NORMAL_PERSON, NERD, padding="longest", return_tensors="tf")
    ids, mask = enc["input_ids"].numpy(), enc["attention_mask"].numpy()
    hs = np.stack([h.numpy() for h in model(**enc, output_hidden_states=True).hidden_states])
    t0, t1 = int(mask[0].sum()), int(mask[1].sum())
    # the positions the seed notebook printed (Q1: [13, 15]; Q4: [10, 15])
    assert [p.tolist() for p in word_positions(tok, ids[0, :t0], "code")] == [[13], [15]]
    assert [p.tolist() for p in word_positions(tok, ids[1, :t1], "coding")] == [[10], [15]]
    # matching by token id (the seed's way) also finds 'free' inside 'free ##s' (frees)
    assert np.flatnonzero(ids[0] == tok.convert_tokens_to_ids("free")).tolist() == [8, 16]
    assert [p.tolist() for p in word_positions(tok, ids[0, :t0], "free")] == [[8]]
    # API vs explicit NumPy indexing
    x = hs[-4:, 0, 13].sum(0)
    y = hs[-4:, 0, 15].sum(0)
    explicit = x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-8)
    text0 = hs[:, 0, :t0]
    api = cosine_similarity(
        word_embedding(text0, 13, "sum_last4"), word_embedding(text0, 15, "sum_last4")
    )
    assert api == pytest.approx(explicit, abs=1e-6)
    coding = occurrence_vectors(hs[:, 1, :t1], ids[1, :t1], tok, "coding", "concat_last4")
    x = np.concatenate([hs[i, 1, 10] for i in (-1, -2, -3, -4)])
    y = np.concatenate([hs[i, 1, 15] for i in (-1, -2, -3, -4)])
    explicit = x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-8)
    assert cosine_similarity(coding[0], coding[1]) == pytest.approx(explicit, abs=1e-6)
    assert 0.3 < explicit < 0.999  # same word, different contexts


def test_decomposition_and_pooler_on_minilm(minilm):
    model, tok = minilm
    text = "The bank of the river was muddy after the storm."
    parts = decompose_text(model, tok, text)
    h0 = hidden_states(model, tok, [text], layers=[0], progress=False)[0][0]
    assert max_abs_difference(parts, h0) < 1e-5
    texts = [text, "A short one.", "Bankers met in London on Tuesday to discuss rates."]
    feats = sentence_features(model, tok, texts, ("pooler", "mean"), max_batch=3)
    for i, t in enumerate(texts):
        out = model(**tok(t, return_tensors="tf"))
        np.testing.assert_allclose(feats["pooler"][i], out.pooler_output.numpy()[0], atol=1e-5)
        np.testing.assert_allclose(
            feats["mean"][i], out.last_hidden_state.numpy()[0].mean(0), atol=1e-5
        )


def test_wordnet_words_are_single_tokens_and_norms(minilm, shared_data):
    model, tok = minilm
    path = shared_data / "wordnet" / "wordnet_bert_common_words.csv"
    table = read_word_definitions(path)  # its word column is called 'words'
    assert len(table) == 12136
    ids = word_token_ids(tok, table["word"].tolist(), lines=table["line"].tolist())
    assert len(np.unique(ids)) == len(ids)
    norms = norms_study(model, tok, table.iloc[:48], max_batch=16).table
    assert (norms[["norm_embedding", "norm_hidden", "norm_pooler"]] > 0).all().all()
    assert norms["word"].tolist()[:3] == ["a", "aa", "ab"]


def test_ag_news_csv(shared_data):
    data = read_labeled_csv(shared_data / "ag-news" / "test.csv")
    assert len(data) == 7600
    assert np.bincount(data.labels).tolist() == [1900] * 4
    assert data.class_names == ("World", "Sports", "Business", "Sci/Tech")
    assert "\\" not in "".join(data.texts)
