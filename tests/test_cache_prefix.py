"""A corpus that begins a cached one is served from that entry's first rows: equal to its own
extraction, never from an entry of another model, dtype or corpus, nor from a damaged one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CACHE_SENTENCES

import bert_repro.features as features
from bert_repro.cache import WordFeatureStore, cached_word_features
from bert_repro.errors import ConfigError
from bert_repro.features import word_features
from bert_repro.probe.data import ProbeDataset

SENTS = CACHE_SENTENCES
FIRST = 7


def _no_extraction(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("extracted although a longer entry holds these sentences")

    monkeypatch.setattr(features, "iter_word_batches", boom)


def test_first_sentences_come_from_the_longer_entry(tiny_bert, tmp_path, monkeypatch):
    model, tok = tiny_bert
    full = cached_word_features(model, tok, SENTS, tmp_path, max_batch=4, progress=False)
    ref = word_features(model, tok, SENTS[:FIRST], progress=False)  # extracted on their own
    with monkeypatch.context() as m:
        _no_extraction(m)
        part = cached_word_features(
            model, tok, SENTS[:FIRST], tmp_path, longer=SENTS, max_batch=4, progress=False
        )
    assert part.path == full.path and len(part) == FIRST
    assert part.lengths.tolist() == [len(s) for s in SENTS[:FIRST]]
    rows = sum(len(s) for s in SENTS[:FIRST])
    for k in range(3):
        assert part.layer(k).shape == (rows, full.hidden_size)  # no row past the subset
        np.testing.assert_array_equal(part.layer(k), full.layer(k)[:rows])
        for i in range(FIRST):
            np.testing.assert_allclose(part.sentence(i, k), ref[i][k], atol=1e-6)
    # without `longer` the subset gets its own entry, as before
    own = cached_word_features(model, tok, SENTS[:FIRST], tmp_path, progress=False)
    assert own.path != full.path


def test_no_entry_of_another_dtype_or_a_shorter_corpus_is_used(tiny_bert, tmp_path):
    model, tok = tiny_bert
    half = cached_word_features(model, tok, SENTS, tmp_path, cache_dtype="float16", progress=False)
    short = cached_word_features(model, tok, SENTS[:3], tmp_path, progress=False)
    part = cached_word_features(model, tok, SENTS[:FIRST], tmp_path, longer=SENTS, progress=False)
    assert part.path not in (half.path, short.path)
    assert part.dtype == np.float32 and len(part) == FIRST and part.meta["n_sentences"] == FIRST


def test_sentences_that_do_not_begin_the_longer_corpus_are_refused(tiny_bert, tmp_path):
    model, tok = tiny_bert
    cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="not the first sentences"):
        cached_word_features(model, tok, SENTS[1:FIRST], tmp_path, longer=SENTS, progress=False)


def test_a_damaged_longer_entry_is_passed_over(tiny_bert, tmp_path):
    model, tok = tiny_bert
    full = cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    layer = full.path / "layer_001.npy"
    data = bytearray(layer.read_bytes())
    data[-4:] = b"\x00\x00\x80\x7f"  # the last float becomes +inf
    layer.write_bytes(bytes(data))
    part = cached_word_features(model, tok, SENTS[:FIRST], tmp_path, longer=SENTS, progress=False)
    assert part.path != full.path and part.meta["n_sentences"] == FIRST


def test_a_store_of_the_first_sentences_checks_its_count(tiny_bert, tmp_path):
    model, tok = tiny_bert
    full = cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    for bad in (0, len(SENTS) + 1):
        with pytest.raises(ConfigError, match="sentences must be in"):
            WordFeatureStore(full.path, sentences=bad)


def _treebank(path) -> None:
    """SENTS as a CoNLL-U file, each word headed by the next, the last the root."""
    blocks = []
    for words in SENTS:
        n = len(words)
        rows = [
            f"{i}\t{w}\t{w}\tNOUN\tNN\t_\t{0 if i == n else i + 1}\t{'root' if i == n else 'dep'}\t_\t_"
            for i, w in enumerate(words, start=1)
        ]
        blocks.append("\n".join(rows) + "\n")
    path.write_text("\n".join(blocks) + "\n", encoding="utf-8")


def test_a_probe_subset_of_the_first_sentences_reuses_a_longer_subset(
    tiny_bert, tmp_path, monkeypatch
):
    model, tok = tiny_bert
    _treebank(tmp_path / "t.conllu")
    ds = ProbeDataset(tmp_path / "t.conllu", cache_dir=tmp_path / "cache")
    longer = ds.subset(range(12)).features(model, tok, progress=False)
    first = ds.subset(range(5))
    with monkeypatch.context() as m:
        _no_extraction(m)
        store = first.features(model, tok, progress=False)
        assert first.subset(range(3)).features(model, tok, progress=False).path == longer.path
    assert store.path == longer.path and store.lengths.tolist() == first.lengths.tolist()
    feats, _, lengths = next(first.iter_batches(store, 2, "depth", batch_size=5))
    assert lengths.tolist() == first.lengths.tolist()
    assert feats.shape[0] == 5
    # sentences 1..4 are not the first ones: their own entry
    assert ds.subset([1, 2, 3, 4]).features(model, tok, progress=False).path != longer.path
