"""ProbeDataset: word-aligned features from the cache, gold labels, batches that drop nothing."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.errors import ConfigError, InputTooLongError
from bert_repro.probe.data import ProbeDataset

SENTENCES = [
    "the dog said no",
    "a cat was good",
    "he can not code python",
    "debug the program",
    "we said it would be a good day and a good night",
    "dogs",
    "the woman with the dog was at the bank of the river",
]


def conllu_text(sentences, *, mwt_in_first=True):
    """Chain trees (word 1 is the root, word k depends on word k-1); the first sentence also
    carries a multiword token line and an empty node, which are not words."""
    blocks = []
    for n, text in enumerate(sentences):
        words = text.split()
        lines = [f"# sent_id = s{n}", f"# text = {text}"]
        for i, w in enumerate(words, start=1):
            if n == 0 and mwt_in_first and i == 2:
                lines.append(f"2-3\t{words[1]}{words[2]}\t_\t_\t_\t_\t_\t_\t_\t_")
            xpos = "." if w in {".", ","} else "NN"
            lines.append(f"{i}\t{w}\t{w}\tNOUN\t{xpos}\t_\t{i - 1}\tdep\t_\t_")
            if n == 0 and mwt_in_first and i == 2:
                lines.append(f"2.1\t{w}\t{w}\tNOUN\tNN\t_\t_\t_\t1:dep\t_")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


@pytest.fixture
def treebank(tmp_path):
    p = tmp_path / "tiny.conllu"
    p.write_text(conllu_text(SENTENCES), encoding="utf-8")
    return p


@pytest.fixture
def dataset(treebank, tmp_path):
    return ProbeDataset(treebank, cache_dir=tmp_path / "cache")


def test_gold_labels(dataset):
    assert len(dataset) == 7
    assert dataset.words[0] == ["the", "dog", "said", "no"]  # 2-3 and 2.1 are not words
    assert dataset.lengths.tolist() == [len(s.split()) for s in SENTENCES]
    d = dataset.distances[0]
    assert d.tolist() == [[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]]
    assert dataset.depths[0].tolist() == [0, 1, 2, 3]
    assert dataset.labels("depth") is dataset.depths
    with pytest.raises(ConfigError, match="kind="):
        dataset.labels("pairs")


def test_features_are_word_aligned(dataset, tiny_bert):
    from bert_repro.features import word_features

    model, tok = tiny_bert
    store = dataset.features(model, tok, progress=False)
    assert store.num_layers == model.config.num_hidden_layers + 1
    assert store.lengths.tolist() == dataset.lengths.tolist()
    ref = word_features(model, tok, dataset.words, progress=False)
    for i, r in enumerate(ref):
        for k in range(store.num_layers):
            np.testing.assert_allclose(store.sentence(i, k), r[k], rtol=1e-5, atol=1e-5)


def test_batches_drop_nothing_and_pad_correctly(dataset, tiny_bert):
    model, tok = tiny_bert
    store = dataset.features(model, tok, progress=False)
    batches = list(dataset.iter_batches(store, 1, "distance", batch_size=3))
    assert [len(b[2]) for b in batches] == [3, 3, 1]  # the last partial batch is kept
    seen = 0
    for feats, labels, lengths in batches:
        w = int(lengths.max())
        assert feats.shape == (len(lengths), w, store.hidden_size)
        assert labels.shape == (len(lengths), w, w)
        for r, n in enumerate(lengths):
            i = seen + r
            np.testing.assert_array_equal(feats[r, :n], store.sentence(i, 1))
            assert np.all(feats[r, n:] == 0)
            np.testing.assert_array_equal(labels[r, :n, :n], dataset.distances[i])
            assert np.all(labels[r, n:, :] == -1) and np.all(labels[r, :, n:] == -1)
        seen += len(lengths)
    assert seen == len(dataset)
    (feats, depths, lengths), *_ = dataset.iter_batches(store, 0, "depth", batch_size=7)
    assert depths.shape == (7, int(lengths.max()))
    assert depths[0, :4].tolist() == [0, 1, 2, 3] and np.all(depths[0, 4:] == -1)


def test_tf_dataset_shuffles_every_epoch_reproducibly(dataset, tiny_bert):
    model, tok = tiny_bert
    store = dataset.features(model, tok, progress=False)

    def orders(seed):
        ds = dataset.tf_dataset(store, 2, "depth", batch_size=2, shuffle=True, seed=seed)
        return [np.concatenate([f.numpy()[:, 0, 0] for f, _, _ in ds]).tolist() for _ in range(3)]

    a, b = orders(7), orders(7)
    assert a == b  # same seed, same sequence of epochs
    assert len({tuple(x) for x in a}) > 1  # a new order each epoch
    firsts = sorted(store.sentence(i, 2)[0, 0] for i in range(len(dataset)))
    assert sorted(a[0]) == pytest.approx(firsts)  # every sentence, once
    plain = dataset.tf_dataset(store, 2, "distance", batch_size=4)
    assert sum(int(n.shape[0]) for _, _, n in plain) == len(dataset)


class _FakeStore:
    """Word vectors whose first coordinate is the sentence number (no model needed)."""

    def __init__(self, lengths):
        self.lengths = np.asarray(lengths)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.hidden_size = 2
        sent = np.repeat(np.arange(len(lengths)), self.lengths).astype(np.float32)
        self._vectors = np.stack([sent, np.ones_like(sent)], axis=1)

    def layer(self, k):
        return self._vectors


def test_shuffled_epochs_group_sentences_by_length(ewt_dev):
    """On 600 EWT dev sentences a grouped epoch still serves every sentence once, a new order
    each epoch, but its batches pad to under half the words random batches pad to; the joint
    batches and one layer's tf.data batches hold the same sentences for the same seed."""
    from bert_repro.treebank import read_conllu

    data = ProbeDataset(sentences=read_conllu(ewt_dev)[:600])
    store = _FakeStore(data.lengths)

    def epochs(group, seed=5):
        batches = data.layer_batches(
            store, [0], ["depth"], batch_size=20, shuffle=True, seed=seed, group_by_length=group
        )
        return [[f[0, :, 0, 0].astype(int) for f, _, _ in batches] for _ in range(2)]

    def padded(epoch):
        return sum(len(b) * data.lengths[b].max() for b in epoch)

    grouped, random = epochs(True), epochs(False)
    for epoch in grouped + random:
        assert sorted(np.concatenate(epoch).tolist()) == list(range(600))
    assert [b.tolist() for b in grouped[0]] != [b.tolist() for b in grouped[1]]
    assert padded(grouped[0]) < 0.5 * padded(random[0])
    ds = data.tf_dataset(store, 0, "depth", batch_size=20, shuffle=True, seed=5)
    single = [f.numpy()[:, 0, 0].astype(int).tolist() for f, _, _ in ds]
    assert single == [b.tolist() for b in grouped[0]]


def test_seed_notebook_generator(dataset, tiny_bert, tmp_path):
    """The seed wraps build_pairs_distance_generator in from_generator, masks, and probes."""
    import tensorflow as tf

    from bert_repro.probe.model import TwoWordProbe
    from bert_repro.probe.trainer import build_label_mask

    bert, tokenizer = tiny_bert
    probe = TwoWordProbe(bert.config.hidden_size, 8)
    counts = []
    for layer_index in range(bert.config.num_hidden_layers):
        tf_dataset = tf.data.Dataset.from_generator(
            lambda layer_index=layer_index: dataset.build_pairs_distance_generator(
                bert, tokenizer, layer_index=layer_index, return_length=True, batch_size=3
            ),
            output_types=(tf.float32, tf.float32, tf.int32),
        )
        n = 0
        for hs, probe_rank, length in tf_dataset.take(100):
            max_length = tf.reduce_max(length)
            label_mask = build_label_mask(length, max_length)
            outputs = probe(hs) * label_mask
            gold = probe_rank * label_mask
            assert outputs.shape == gold.shape
            assert float(tf.reduce_min(gold)) >= 0
            n += int(length.shape[0])
        counts.append(n)
    assert counts == [len(dataset)] * bert.config.num_hidden_layers
    entries = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1  # features were extracted once for all layers
    pairs = list(dataset.build_pairs_distance_generator(bert, tokenizer, 0, return_length=False))
    assert len(pairs[0]) == 2
    with pytest.raises(ConfigError, match="does not exist"):
        dataset.build_pairs_distance_generator(bert, tokenizer, layer_index=99)


def test_slow_tokenizer_of_the_seed_gives_the_same_batches(dataset, tiny_bert, tiny_bert_dir):
    from transformers import BertTokenizer

    bert, fast = tiny_bert
    slow = BertTokenizer(vocab_file=str(tiny_bert_dir / "vocab.txt"), do_lower_case=True)
    a = list(dataset.build_pairs_distance_generator(bert, slow, layer_index=1, batch_size=4))
    b = list(dataset.build_pairs_distance_generator(bert, fast, layer_index=1, batch_size=4))
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


def test_too_long_sentence_is_reported_not_cut(tmp_path, tiny_bert):
    model, tok = tiny_bert  # max_position_embeddings 64
    long = " ".join(["dog"] * 70)
    p = tmp_path / "long.conllu"
    p.write_text(conllu_text(["the dog", long, "a cat"], mwt_in_first=False), encoding="utf-8")
    ds = ProbeDataset(p, cache_dir=tmp_path / "cache")
    assert ds.too_long(model, tok) == [1]
    with pytest.raises(InputTooLongError) as info:
        ds.features(model, tok, progress=False)
    err = info.value
    assert err.path == str(p) and err.line == 6  # the second sentence starts on line 6
    assert "s1" in err.reason and "72 wordpieces" in err.reason and "64" in err.reason
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    kept = ds.subset([0, 2])
    assert kept.words == [["the", "dog"], ["a", "cat"]]
    assert kept.features(model, tok, progress=False).lengths.tolist() == [2, 2]
