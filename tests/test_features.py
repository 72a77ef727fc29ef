"""The extraction path against direct model calls and hand computations."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bert_repro.errors import ConfigError, DataError, InputTooLongError
from bert_repro.features import hidden_states, iter_batches, resolve_layers, word_features
from bert_repro.ops import pool_wordpieces
from bert_repro.pipeline import encode_words

TEXTS = [
    "the dog is good",
    "a",
    "the bank of the river had money and the man said no",
    "coding python code, debugging!",
    "we do not know what they said when it was night",
]


def direct(model, tok, text):
    return direct_ids(model, tok([text])["input_ids"][0])


def direct_ids(model, ids):
    """The model called on one unpadded sequence: the reference for everything batched."""
    out = model(input_ids=np.asarray([ids]), output_hidden_states=True)
    return np.stack([h.numpy()[0] for h in out.hidden_states])


def test_hidden_states_equal_direct_calls_on_each_text(tiny_bert):
    model, tok = tiny_bert
    got = hidden_states(model, tok, TEXTS, max_batch=2, progress=False)
    assert len(got) == len(TEXTS)
    for text, h in zip(TEXTS, got, strict=True):
        ref = direct(model, tok, text)
        assert h.shape == ref.shape == (3, len(tok(text)["input_ids"]), 32)
        assert np.abs(h - ref).max() < 1e-4


def test_a_text_gives_the_same_vectors_alone_and_in_a_padded_bucket(tiny_bert):
    model, tok = tiny_bert
    alone = hidden_states(model, tok, [TEXTS[1]], progress=False)[0]
    bucket = hidden_states(model, tok, TEXTS, max_batch=len(TEXTS), progress=False)[1]
    assert np.abs(alone - bucket).max() < 1e-5


@pytest.mark.parametrize("max_tokens", [8, 40, 4096])
def test_results_do_not_depend_on_the_token_budget(tiny_bert, max_tokens):
    model, tok = tiny_bert
    ref = hidden_states(model, tok, TEXTS, max_batch=1, progress=False)
    got = hidden_states(model, tok, TEXTS, max_tokens=max_tokens, progress=False)
    for r, g in zip(ref, got, strict=True):
        assert r.shape == g.shape and np.abs(r - g).max() < 1e-5


def test_xla_path_gives_the_graph_results(tiny_bert):
    """jit_compile pads to a few bucket lengths (and words to the same): same numbers."""
    model, tok = tiny_bert
    graph = hidden_states(model, tok, TEXTS, progress=False)
    xla = hidden_states(model, tok, TEXTS, jit_compile=True, max_tokens=64, progress=False)
    for a, b in zip(graph, xla, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4
    sents = [t.split() for t in TEXTS]
    graph = word_features(model, tok, sents, layers=[0, -1], progress=False)
    xla = word_features(model, tok, sents, layers=[0, -1], jit_compile=True, progress=False)
    for a, b in zip(graph, xla, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4


def test_bad_batch_settings_fail_before_any_work(tiny_bert):
    model, tok = tiny_bert
    with pytest.raises(ConfigError, match="max_tokens"):
        hidden_states(model, tok, TEXTS, max_tokens=0, progress=False)
    with pytest.raises(ConfigError, match="max_batch"):
        word_features(model, tok, [["a"]], max_batch=0, progress=False)


def test_layer_selection_and_order(tiny_bert):
    model, tok = tiny_bert
    full = hidden_states(model, tok, TEXTS, progress=False)
    top = hidden_states(model, tok, TEXTS, layers=[-1, 0], progress=False)
    for f, t in zip(full, top, strict=True):
        np.testing.assert_allclose(t, f[[2, 0]], atol=1e-5)
    with pytest.raises(ConfigError, match="hidden states 0..2"):
        resolve_layers([3], 3)


def test_embedding_output_is_layernorm_of_token_segment_position(tiny_bert):
    model, tok = tiny_bert
    (h,) = hidden_states(model, tok, [TEXTS[2]], progress=False)
    ids = np.array(tok(TEXTS[2])["input_ids"])
    w = {v.name.split("embeddings/", 1)[-1]: v.numpy() for v in model.bert.embeddings.weights}
    x = (
        w["word_embeddings/weight:0"][ids]
        + w["token_type_embeddings/embeddings:0"][np.zeros_like(ids)]
        + w["position_embeddings/embeddings:0"][np.arange(len(ids))]
    )
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    eps = model.config.layer_norm_eps
    ref = (x - mu) / np.sqrt(var + eps) * w["LayerNorm/gamma:0"] + w["LayerNorm/beta:0"]
    assert np.abs(h[0] - ref).max() < 1e-5


def test_word_features_are_the_mean_of_the_right_wordpieces(tiny_bert):
    model, tok = tiny_bert
    sents = [t.replace(",", " ,").replace("!", " !").split() for t in TEXTS]
    sents.append(["xylophones", "quizzically", "the"])  # many pieces per word
    got = word_features(model, tok, sents, max_batch=3, progress=False)
    encs = encode_words(tok, sents)
    for sent, enc, feats in zip(sents, encs, got, strict=True):
        ref_h = direct_ids(model, enc.input_ids)
        manual = np.zeros((3, len(sent), 32))
        for w in range(len(sent)):
            manual[:, w] = ref_h[:, enc.word_index == w].mean(axis=1)
        assert feats.shape == (3, len(sent), 32)
        assert np.abs(feats - manual).max() < 1e-4
        np.testing.assert_allclose(
            pool_wordpieces(ref_h, enc.word_index, len(sent)), manual, atol=1e-6
        )


def test_over_long_input_is_reported_in_every_entry_point(tiny_bert):
    model, tok = tiny_bert
    long_text = "the " * 70
    with pytest.raises(InputTooLongError, match="text 1"):
        hidden_states(model, tok, ["a", long_text], progress=False)
    with pytest.raises(InputTooLongError, match="sentence 0"):
        word_features(model, tok, [long_text.split()], progress=False)


@pytest.mark.integration
def test_minilm_on_real_ewt_sentences_matches_direct_calls(minilm, ewt_dev_sentences):
    model, tok = minilm
    sents = ewt_dev_sentences[:24]
    texts = [" ".join(s) for s in sents]
    got = hidden_states(model, tok, texts, max_batch=8, progress=False)
    for text, h in zip(texts[:6], got[:6], strict=True):
        assert np.abs(h - direct(model, tok, text)).max() < 1e-4
    feats = word_features(model, tok, sents, max_batch=8, progress=False)
    encs = encode_words(tok, sents)
    for i in (0, 5, 17):
        ref = direct_ids(model, encs[i].input_ids)
        manual = pool_wordpieces(ref, encs[i].word_index, len(sents[i]))
        assert feats[i].shape == (7, len(sents[i]), 384)
        assert np.abs(feats[i] - manual).max() < 1e-4


@pytest.mark.parametrize("one", ["The dog barked.", b"The dog barked."])
def test_one_string_is_refused_not_split_into_characters(tiny_bert, one):
    """Before: hidden_states(model, tok, "The dog barked.") gave 15 results, one a character."""
    model, tok = tiny_bert
    fix = re.escape("pass a list, e.g. ['The dog barked.']")
    with pytest.raises(DataError, match=f"^texts is a single string, not a list .*{fix}$"):
        hidden_states(model, tok, one, progress=False)
    with pytest.raises(DataError, match=fix):
        next(iter_batches(model, tok, one, progress=False))
    with pytest.raises(DataError, match=re.escape("e.g. [['The', 'dog', 'barked.']]")):
        word_features(model, tok, one, progress=False)


def test_batches_run_ahead_each_with_its_outputs_and_a_caller_may_stop_early(tiny_bert):
    """One batch runs ahead on a worker thread: every batch still comes with its own outputs
    (equal to its sentences' vectors computed one at a time), each sentence once, the
    per-layer arrays stack into the ``(K, B, W, H)`` block, and leaving the loop early leaves
    no worker behind."""
    import threading

    from bert_repro.features import iter_word_batches

    model, tok = tiny_bert
    sentences = [t.split() for t in TEXTS] * 3
    ref = word_features(model, tok, sentences, max_batch=1, progress=False)
    seen = []
    for index, n_words, vectors in iter_word_batches(
        model, tok, sentences, max_batch=2, progress=False
    ):
        assert len(vectors) == 3 and np.stack(vectors).shape[:2] == (3, len(index))
        for row, i in enumerate(index):
            assert n_words[row] == len(sentences[i])
            got = np.stack([v[row, : n_words[row]] for v in vectors])
            assert np.abs(got - ref[i]).max() < 1e-5
        seen += index.tolist()
    assert sorted(seen) == list(range(len(sentences)))
    stream = iter_word_batches(model, tok, sentences, max_batch=2, progress=False)
    next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("bert_repro-extract")]
