"""Training recovers planted trees, keeps the best dev epoch, decays the LR, stops early, and is
seedable; predictions and metrics do not depend on batching (padding)."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.probe.data import ProbeDataset
from bert_repro.probe.metrics import depth_metrics, distance_metrics
from bert_repro.probe.trainer import evaluate_probe, predict, train_probe
from bert_repro.treebank import Sentence, tree_distances

MAX_WORDS = 12
NOISE = 4


class ArrayStore:
    """A stand-in for bert_repro.cache.WordFeatureStore holding one in-memory layer."""

    def __init__(self, vectors):
        self.lengths = np.array([len(v) for v in vectors])
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self._layer = np.concatenate(vectors).astype(np.float32)
        self.hidden_size = self._layer.shape[1]

    def layer(self, k):
        return self._layer


def planted(n_sentences, seed, *, scale=1.0):
    """Sentences with random trees and word vectors whose squared distances are the tree
    distances (each word = sum of one unit vector per arc on its path to the root) and whose
    squared norms are the depths, plus noise dimensions a probe must learn to ignore."""
    rng = np.random.default_rng(seed)
    sentences, vectors = [], []
    for s in range(n_sentences):
        n = int(rng.integers(3, MAX_WORDS + 1))
        order = rng.permutation(n)
        heads = np.zeros(n, dtype=np.int64)
        for k in range(1, n):
            heads[order[k]] = order[rng.integers(0, k)] + 1
        x = np.zeros((n, MAX_WORDS + NOISE))
        for i in range(n):
            node = i
            while heads[node]:
                x[i, node] = 1.0
                node = heads[node] - 1
        x[:, MAX_WORDS:] = rng.normal(size=(n, NOISE))
        sentences.append(
            Sentence(
                words=tuple(f"w{i}" for i in range(n)),
                heads=heads,
                upos=("NOUN",) * n,
                xpos=("NN",) * n,
                text=None,
                sent_id=f"p{s}",
                lines=tuple(range(1, n + 1)),
                start_line=1,
            )
        )
        vectors.append(x * scale)
    return ProbeDataset(sentences=sentences), ArrayStore(vectors)


@pytest.fixture(scope="module")
def data():
    return planted(200, 0), planted(60, 1)


def _train(kind, data, **kw):
    (tr, tr_store), (dv, dv_store) = data
    settings = dict(model_dim=MAX_WORDS + NOISE, probe_rank=MAX_WORDS, seed=0)
    settings.update(kw)
    return train_probe(
        kind,
        tr.tf_dataset(tr_store, 0, kind, batch_size=20, shuffle=True, seed=0),
        dv.tf_dataset(dv_store, 0, kind, batch_size=20),
        **settings,
    )


@pytest.mark.parametrize("kind", ["distance", "depth"])
def test_training_recovers_planted_trees(data, kind):
    result = _train(kind, data, epochs=30, learning_rate=0.02)
    _, (dv, dv_store) = data
    metrics = evaluate_probe(
        result.probe,
        kind,
        dv.tf_dataset(dv_store, 0, kind, batch_size=20),
        dv.labels(kind),
        dv.punctuation,
    )
    if kind == "distance":
        assert metrics["uuas"] > 0.95 and metrics["dspr"] > 0.9, metrics
    else:
        assert metrics["root_acc"] > 0.95 and metrics["nspr"] > 0.9, metrics
    assert result.dev_loss < 0.2
    # the probe holds the kept (best) dev epoch's weights, and evaluates to its dev loss
    val = result.history["val_loss"]
    assert result.dev_loss == val[result.best_epoch - 1]
    assert result.dev_loss <= min(val) + 1e-4
    again = result.probe.evaluate(
        dv.tf_dataset(dv_store, 0, kind, batch_size=20).map(lambda f, y, n: (f, y)), verbose=0
    )
    assert again == pytest.approx(result.dev_loss, rel=1e-4)


def test_lr_decays_on_plateau_and_training_stops_early(data):
    (tr, tr_store), _ = data
    # dev word vectors shuffled within each sentence: labels no longer fit, dev loss stalls
    dv, store = planted(60, 1)
    rng = np.random.default_rng(0)
    shuffled = ArrayStore(
        [
            store._layer[a:b][rng.permutation(b - a)]
            for a, b in zip(store.offsets[:-1], store.offsets[1:], strict=True)
        ]
    )
    result = train_probe(
        "depth",
        tr.tf_dataset(tr_store, 0, "depth", batch_size=20, shuffle=True, seed=0),
        dv.tf_dataset(shuffled, 0, "depth", batch_size=20),
        model_dim=MAX_WORDS + NOISE,
        probe_rank=4,
        epochs=40,
        learning_rate=0.05,
    )
    lrs = result.history["lr"]
    val = result.history["val_loss"]
    assert result.epochs < 40
    assert result.epochs - result.best_epoch == 5  # stopped after 5 epochs without progress
    best = np.inf
    for e in range(len(val) - 1):
        # patience 0: the LR of the next epoch is 10 times smaller after each epoch that did
        # not beat the best so far by more than min_delta (lrs[e] is epoch e's own LR)
        improved = val[e] < best - 1e-4
        best = val[e] if improved else best
        assert lrs[e + 1] == pytest.approx(lrs[e] * (1.0 if improved else 0.1), rel=1e-5)
    assert lrs[-1] < lrs[0]


def test_seeded_training_is_reproducible(data):
    a = _train("distance", data, epochs=2)
    b = _train("distance", data, epochs=2)
    c = _train("distance", data, epochs=2, seed=1)
    np.testing.assert_allclose(a.probe.proj.numpy(), b.probe.proj.numpy(), atol=1e-6)
    assert not np.allclose(a.probe.proj.numpy(), c.probe.proj.numpy())


@pytest.mark.parametrize("kind", ["distance", "depth"])
def test_metrics_do_not_depend_on_batching(data, kind):
    """Batches of 1 have no padding; batches of 60 pad to the longest sentence."""
    result = _train(kind, data, epochs=1)
    _, (dv, dv_store) = data
    alone = predict(result.probe, dv.tf_dataset(dv_store, 0, kind, batch_size=1))
    padded = predict(result.probe, dv.tf_dataset(dv_store, 0, kind, batch_size=60))
    for a, p, n in zip(alone, padded, dv.lengths, strict=True):
        assert a.shape == p.shape == ((n, n) if kind == "distance" else (n,))
        np.testing.assert_allclose(a, p, rtol=1e-4, atol=1e-4)
    fn = distance_metrics if kind == "distance" else depth_metrics
    ma = fn(alone, dv.labels(kind), dv.punctuation)
    mp = fn(padded, dv.labels(kind), dv.punctuation)
    for k in ma:
        assert ma[k] == pytest.approx(mp[k], abs=1e-6)


def test_planted_vectors_are_exact():
    (ds, store) = planted(5, 3)
    for i in range(5):
        x = store._layer[store.offsets[i] : store.offsets[i + 1], :MAX_WORDS]
        d = ((x[:, None] - x[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(d, tree_distances(ds.sentences[i].heads))


def test_probe_training_takes_friendly_keywords_once_and_names_unknown_ones():
    from bert_repro.errors import ConfigError
    from bert_repro.probe.trainer import ProbeTraining

    base = ProbeTraining(epochs=3)
    training, log = ProbeTraining.create(base, seed=7, log=print)
    assert (training.epochs, training.seed, log) == (3, 7, print)
    assert base.seed == 0  # the caller's object is not changed
    with pytest.warns(DeprecationWarning, match="log="):
        _, old = ProbeTraining.create(print_fn=print)
    assert old is print
    with pytest.raises(ConfigError, match="epoch.*valid: .*epochs"):
        ProbeTraining.create(epoch=3)
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        ProbeTraining(epochs=0)
