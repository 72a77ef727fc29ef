"""The probes compute what the paper says, survive save/load, and ignore padding."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro._keras import keras
from bert_repro.probe.model import (
    OneWordProbe,
    TwoWordProbe,
    load_probe,
    make_probe,
    pairwise_sq_distances,
    save_probe,
)


def brute_distances(h, b):
    bsz, w, _ = h.shape
    out = np.zeros((bsz, w, w))
    for s in range(bsz):
        for i in range(w):
            for j in range(w):
                v = (h[s, i] - h[s, j]) @ b  # B(h_i - h_j)
                out[s, i, j] = v @ v
    return out


def brute_norms(h, b):
    return np.einsum("swr,swr->sw", h @ b, h @ b)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    # large offset: the naive |a|^2+|b|^2-2ab would lose precision without centring
    return (rng.normal(size=(3, 7, 16)) + 5.0).astype(np.float32)


def test_distance_probe_matches_numpy_brute_force(batch):
    probe = TwoWordProbe(16, 5, seed=1)
    b = probe.proj.numpy().astype(np.float64)
    assert b.shape == (16, 5)
    got = probe(batch).numpy()
    assert got.shape == (3, 7, 7)
    want = brute_distances(batch.astype(np.float64), b)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.all(np.diagonal(got, axis1=1, axis2=2) == 0)
    np.testing.assert_array_equal(got, np.transpose(got, (0, 2, 1)))


def test_depth_probe_matches_numpy_brute_force(batch):
    probe = OneWordProbe(16, 5, seed=1)
    got = probe(batch).numpy()
    assert got.shape == (3, 7)
    want = brute_norms(batch.astype(np.float64), probe.proj.numpy().astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_init_is_uniform_005_and_seeded():
    a = TwoWordProbe(300, 64, seed=3).proj.numpy()
    b = TwoWordProbe(300, 64, seed=3).proj.numpy()
    c = TwoWordProbe(300, 64, seed=4).proj.numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= -0.05 and a.max() <= 0.05
    assert a.std() == pytest.approx(0.1 / np.sqrt(12), rel=0.05)  # U(-0.05, 0.05)


def test_padding_does_not_change_the_real_entries(batch):
    probe = TwoWordProbe(16, 5, seed=1)
    depth = OneWordProbe(16, 5, seed=1)
    alone = batch[:1, :4]  # a 4-word sentence
    padded = np.zeros((1, 9, 16), np.float32)
    padded[:, :4] = alone
    np.testing.assert_allclose(
        probe(padded).numpy()[:, :4, :4], probe(alone).numpy(), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(depth(padded).numpy()[:, :4], depth(alone).numpy(), rtol=1e-6)


def test_pairwise_sq_distances_never_negative():
    x = np.repeat(np.random.default_rng(0).normal(size=(1, 1, 8)), 5, axis=1) * 1e3
    d = pairwise_sq_distances(x.astype(np.float32)).numpy()
    assert np.all(d >= 0) and np.allclose(d, 0, atol=1e-2)


def test_config_round_trip():
    probe = TwoWordProbe(16, 5, seed=2, name="p")
    cfg = probe.get_config()
    assert cfg == {"name": "p", "trainable": True, "model_dim": 16, "probe_rank": 5, "seed": 2}
    clone = TwoWordProbe.from_config(cfg)
    assert (clone.model_dim, clone.probe_rank) == (16, 5)
    np.testing.assert_array_equal(clone.proj.numpy(), probe.proj.numpy())  # same seed


@pytest.mark.parametrize("cls", [TwoWordProbe, OneWordProbe])
def test_save_weights_load_weights_as_in_the_seed(tmp_path, batch, cls):
    trained = cls(16, 5, seed=1)
    trained.proj.assign(trained.proj * 3.0)
    trained.save_weights(str(tmp_path / "model"))  # TF checkpoint, as the seed's '.../model'
    fresh = cls(16, 5)  # not called yet: load_weights must still work
    fresh.load_weights(str(tmp_path / "model"))
    np.testing.assert_array_equal(fresh(batch).numpy(), trained(batch).numpy())
    trained.save_weights(str(tmp_path / "probe.h5"))
    h5 = cls(16, 5)
    h5.load_weights(str(tmp_path / "probe.h5"))
    np.testing.assert_array_equal(h5(batch).numpy(), trained(batch).numpy())


@pytest.mark.parametrize("kind", ["distance", "depth"])
def test_keras_save_and_load_model(tmp_path, batch, kind):
    probe = make_probe(kind, 16, 5, seed=1)
    want = probe(batch).numpy()
    probe.save(tmp_path / "probe.keras")
    loaded = keras.models.load_model(tmp_path / "probe.keras")
    assert type(loaded) is type(probe)
    np.testing.assert_array_equal(loaded(batch).numpy(), want)


def test_save_probe_and_load_probe(tmp_path, batch):
    probe = make_probe("distance", 16, 5, seed=1)
    probe.compile(optimizer="adam", loss="mae")  # optimizer state must not end up in the file
    prefix = save_probe(probe, tmp_path / "p")
    assert prefix == tmp_path / "p" / "model"
    loaded = load_probe(tmp_path / "p", "distance")
    np.testing.assert_array_equal(loaded(batch).numpy(), probe(batch).numpy())
    with pytest.raises(Exception, match="not a depth probe"):
        load_probe(tmp_path / "p", "depth")
    with pytest.raises(Exception, match="kind="):
        make_probe("pairs", 16, 5)
