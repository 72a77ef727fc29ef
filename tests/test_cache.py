"""The word-feature cache: equal to direct extraction, hit when unchanged, refused otherwise,
resumed after an interruption, and a damaged entry found by its checksums and rebuilt."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CACHE_SENTENCES

import bert_repro.cache as cache
import bert_repro.features as features
from bert_repro.cache import WordFeatureStore, cached_word_features
from bert_repro.errors import DataError
from bert_repro.features import word_features
from bert_repro.models import load_bert

SENTS = CACHE_SENTENCES


def test_cache_equals_direct_extraction_and_is_hit_the_second_time(
    tiny_bert, tmp_path, monkeypatch
):
    model, tok = tiny_bert
    store = cached_word_features(model, tok, SENTS, tmp_path, max_batch=4, progress=False)
    ref = word_features(model, tok, SENTS, progress=False)
    assert store.num_layers == 3 and len(store) == len(SENTS)
    assert store.lengths.tolist() == [len(s) for s in SENTS]
    for i, r in enumerate(ref):
        for k in range(3):
            np.testing.assert_allclose(store.sentence(i, k), r[k], atol=1e-6)

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(features, "iter_word_batches", boom)
    again = cached_word_features(model, tok, SENTS, tmp_path, max_batch=4, progress=False)
    assert again.path == store.path


def test_cache_is_refused_when_model_or_corpus_changes(tiny_bert_dir, tmp_path):
    model, tok = load_bert(tiny_bert_dir)
    a = cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    b = cached_word_features(model, tok, SENTS[:-1], tmp_path, progress=False)
    assert a.path != b.path
    w = next(v for v in model.weights if "layer_._1/output/dense/bias" in v.name)
    # not a constant shift: the LayerNorm after this bias would cancel it
    w.assign(w.numpy() + np.random.default_rng(0).normal(0, 0.5, w.shape).astype(np.float32))
    c = cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    assert c.path != a.path
    assert not np.allclose(c.layer(2), a.layer(2))


def test_float16_cache_is_close_to_float32(tiny_bert, tmp_path):
    model, tok = tiny_bert
    a = cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    h = cached_word_features(model, tok, SENTS, tmp_path, dtype="float16", progress=False)
    assert h.layer(1).dtype == np.float16
    np.testing.assert_allclose(h.layer(1).astype(np.float32), a.layer(1), atol=5e-3, rtol=5e-3)


def test_interrupted_fill_resumes_without_recomputing(tiny_bert, tmp_path, monkeypatch):
    model, tok = tiny_bert
    monkeypatch.setattr(cache, "CHECKPOINT_SECONDS", 0.0)  # checkpoint after every batch
    real = features.iter_word_batches
    seen = []

    def dies_after_two(*args, **kwargs):
        for n, item in enumerate(real(*args, **kwargs)):
            if n == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(features, "iter_word_batches", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        cached_word_features(model, tok, SENTS, tmp_path, max_batch=4, progress=False)
    assert not any(p.name[0] != "." for p in tmp_path.iterdir())  # no finished entry

    def counting(model_, tok_, sentences, **kwargs):
        seen.append(len(sentences))
        yield from real(model_, tok_, sentences, **kwargs)

    monkeypatch.setattr(features, "iter_word_batches", counting)
    store = cached_word_features(model, tok, SENTS, tmp_path, max_batch=4, progress=False)
    assert seen == [len(SENTS) - 8]  # the two finished batches of 4 were not redone
    ref = word_features(model, tok, SENTS, progress=False)
    for i, r in enumerate(ref):
        np.testing.assert_allclose(store.sentence(i, 2), r[2], atol=1e-6)


def _zeros(entry):
    arr = np.load(entry / "layer_001.npy", mmap_mode="r+", allow_pickle=False)
    arr[:] = 0  # valid-looking: same header, same size, plausible numbers
    arr.flush()


def _other_layer(entry):
    shutil.copyfile(entry / "layer_002.npy", entry / "layer_001.npy")  # same header too


def _random_bytes(entry):
    arr = np.load(entry / "layer_001.npy", mmap_mode="r+", allow_pickle=False)
    arr[:] = np.random.default_rng(0).normal(size=arr.shape)
    arr.flush()


def _truncated(entry):
    f = entry / "layer_001.npy"
    os.truncate(f, f.stat().st_size // 2)


@pytest.mark.parametrize("damage", [_zeros, _other_layer, _random_bytes, _truncated])
def test_a_damaged_layer_file_is_named_and_rebuilt(tiny_bert, tmp_path, damage):
    model, tok = tiny_bert
    entry = cached_word_features(model, tok, SENTS, tmp_path, progress=False).path
    WordFeatureStore(entry)  # sound: opens
    damage(entry)
    with pytest.raises(DataError, match=f"{entry} is damaged .*layer_001.npy.*delete it"):
        WordFeatureStore(entry)
    with pytest.warns(UserWarning, match=f"{entry} is damaged .*rebuilding it") as caught:
        store = cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    assert len(caught) == 1
    assert store.path == entry and not list(tmp_path.glob(".damaged-*"))
    ref = word_features(model, tok, SENTS, progress=False)
    for i, r in enumerate(ref):
        for k in range(3):
            np.testing.assert_allclose(store.sentence(i, k), r[k], atol=1e-6)
    WordFeatureStore(entry)  # sound again


def test_checksums_cover_every_file_and_an_entry_without_them_is_refused(tiny_bert, tmp_path):
    model, tok = tiny_bert
    store = cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    meta = json.loads((store.path / "meta.json").read_text())
    assert sorted(meta["checksums"]) == ["layer_000.npy", "layer_001.npy", "layer_002.npy"] + [
        "lengths.npy"
    ]
    assert meta["format"] == cache.CACHE_FORMAT
    del meta["checksums"]  # what an entry of the previous version looks like
    (store.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="no checksums.*earlier version.*delete it"):
        WordFeatureStore(store.path)
    with pytest.warns(UserWarning, match="no checksums.*rebuilding it"):
        again = cached_word_features(model, tok, SENTS, tmp_path, progress=False)
    assert "checksums" in again.meta


def test_an_entry_is_hashed_once_per_process(tiny_bert, tmp_path, monkeypatch):
    model, tok = tiny_bert
    entry = cached_word_features(model, tok, SENTS, tmp_path, progress=False).path
    monkeypatch.setattr(cache, "RACY_NS", 0)  # the files were written just now
    hashed = []
    real = cache.file_fingerprint

    def counting(path, **kwargs):
        hashed.append(Path(path).name)
        return real(path, **kwargs)

    monkeypatch.setattr(cache, "file_fingerprint", counting)
    for _ in range(3):
        store = WordFeatureStore(entry)
        for k in range(3):
            store.layer(k)
    assert sorted(hashed) == ["layer_000.npy", "layer_001.npy", "layer_002.npy", "lengths.npy"]
