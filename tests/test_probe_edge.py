"""Edge probes: examples from CoNLL-U, batches of cached features, the stacked Keras probes
against a NumPy forward pass, joint training equal to training alone, a learnable synthetic
task vs shuffled labels, and `bert-repro probe edge` end to end (tiny BERT; MiniLM on EWT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_result_job

from bert_repro.cli import main
from bert_repro.errors import DataError
from bert_repro.probe.edge_data import (
    SPAN_ROLES,
    UD_RELATIONS,
    UPOS_TAGS,
    edge_batches,
    edge_examples,
    iter_edge_batches,
)
from bert_repro.probe.edge_model import LAYER_NORM_EPSILON, StackedEdgeProbes
from bert_repro.probe.edge_train import predict_edge, train_edge_probes
from bert_repro.probe.metrics import micro_f1
from bert_repro.treebank import parse_conllu

CONLLU = """# sent_id = a
# text = She was seen don't
1\tShe\tshe\tPRON\tPRP\t_\t3\tnsubj:pass\t_\t_
2\twas\tbe\tAUX\tVBD\t_\t3\taux:pass\t_\t_
3\tseen\tsee\tVERB\tVBN\t_\t0\troot\t_\t_
4-5\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
4\tdo\tdo\tAUX\tVBP\t_\t3\tconj\t_\t_
5\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_

# sent_id = b
1\tGo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
2\t.\t.\tPUNCT\t.\t_\t1\tpunct\t_\t_
"""


class Store:
    """A stand-in for WordFeatureStore: in-memory layers ``(total_words, H)``."""

    def __init__(self, layers, lengths):
        self._layers = [np.asarray(v, np.float32) for v in layers]
        self.lengths = np.asarray(lengths)
        self.hidden_size = self._layers[0].shape[1]

    def layer(self, k):
        return self._layers[k]


def test_examples_hand_checked():
    sents = parse_conllu(CONLLU)
    pos = edge_examples(sents, "pos")
    assert pos.rows[:, 0].tolist() == list(range(7))  # multiword line 4-5 is not a word
    assert [UPOS_TAGS[i] for i in pos.labels] == "PRON AUX VERB AUX PART VERB PUNCT".split()
    dep = edge_examples(sents, "deprel")
    # (dependent, head) rows; the roots (rows 2 and 5) are their own heads
    assert dep.rows.tolist() == [[0, 2], [1, 2], [2, 2], [3, 2], [4, 3], [5, 5], [6, 5]]
    labels = [UD_RELATIONS[i] for i in dep.labels]
    assert labels == "nsubj aux root conj advmod root punct".split()  # subtypes dropped
    assert dep.starts.tolist() == [0, 5, 7] and dep.num_spans == len(SPAN_ROLES["deprel"]) == 2


def test_bad_labels_name_file_and_line(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text(CONLLU.replace("AUX\tVBP", "AUXX\tVBP").replace("\tpunct\t", "\t_\t"))
    from bert_repro.treebank import read_conllu

    sents = read_conllu(path)
    with pytest.raises(DataError, match=r"bad.conllu:7: .*'AUXX'"):
        edge_examples(sents, "pos")
    with pytest.raises(DataError, match=r"bad.conllu:12: .*relation '_'"):
        edge_examples(sents, "deprel")


def test_batches_serve_every_example_once_with_the_stored_vectors():
    sents = parse_conllu(CONLLU)
    dep = edge_examples(sents, "deprel")
    rng = np.random.default_rng(0)
    layers = [rng.normal(size=(7, 5)) for _ in range(3)]
    store = Store(layers, dep.lengths)
    batches = list(iter_edge_batches(dep, store, [2, 0], batch_size=1, order=[1, 0]))
    assert [len(b[1]) for b in batches] == [2, 5]  # sentence b first, then a
    feats = np.concatenate([b[0] for b in batches], axis=2)  # (S, R, N, H)
    ex = [5, 6, 0, 1, 2, 3, 4]
    for s, k in enumerate([2, 0]):
        for r in range(2):
            np.testing.assert_array_equal(feats[s, r], store.layer(k)[dep.rows[ex, r]])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), dep.labels[ex])
    epochs = edge_batches(dep, store, [0], batch_size=1, shuffle=True, seed=3)
    orders = [[len(b[1]) for b in epoch] for epoch in (epochs, epochs, epochs)]
    again = edge_batches(dep, store, [0], batch_size=1, shuffle=True, seed=3)
    assert orders == [[len(b[1]) for b in epoch] for epoch in (again, again, again)]
    with pytest.raises(DataError, match="lengths"):
        next(iter_edge_batches(dep, Store(layers, [7]), [0]))


def _numpy_logits(probes: StackedEdgeProbes, p: int, features: np.ndarray) -> np.ndarray:
    """Probe ``p``'s logits computed with NumPy loops from its weights."""
    w = {v.name.split("/")[-1].split(":")[0]: v.numpy()[p] for v in probes.weights}
    states = probes.probes[p]
    if probes.mix[p]:
        a = w["mix_logits"][states]
        s = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
        x = w["mix_scale"] * sum(si * features[k] for si, k in zip(s, states, strict=True))
    else:
        x = features[states[0]]  # (R, N, H)
    spans = [x[r] @ w["proj_kernel"][r] + w["proj_bias"][r] for r in range(x.shape[0])]
    z = np.tanh(np.concatenate(spans, axis=1) @ w["hidden_kernel"] + w["hidden_bias"])
    z = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + LAYER_NORM_EPSILON)
    z = z * w["norm_scale"] + w["norm_bias"]
    return z @ w["out_kernel"] + w["out_bias"]


def _random_probes(seed=0, dropout=0.0):
    probes = StackedEdgeProbes(
        [[1], [0, 1, 2], [2], [0, 1]],
        [False, True, False, True],
        num_states=3,
        model_dim=6,
        num_spans=2,
        num_labels=5,
        projection_dim=4,
        hidden_dim=7,
        dropout=dropout,
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    for v in probes.weights:
        v.assign(rng.normal(size=v.shape).astype(np.float32))
    return probes


def test_stacked_probes_match_numpy_and_mix_weights_sum_to_one():
    probes = _random_probes()
    features = np.random.default_rng(1).normal(size=(3, 2, 9, 6)).astype(np.float32)
    logits = probes(features).numpy()
    for p in range(probes.num_probes):
        np.testing.assert_allclose(logits[p], _numpy_logits(probes, p, features), atol=2e-4)
    s = probes.mix_weights().numpy()
    np.testing.assert_allclose(s.sum(axis=1), 1.0, atol=1e-6)
    assert s[0].tolist() == [0, 1, 0] and s[2].tolist() == [0, 0, 1]  # single layers: one-hot
    assert s[3, 2] == 0.0  # the mix of layers 0..1 gives layer 2 nothing
    # one probe alone (select) computes what its slice computes in the stack
    np.testing.assert_allclose(
        probes.select([3])(features).numpy()[0], logits[3], rtol=1e-5, atol=1e-5
    )
    clone = StackedEdgeProbes.from_config(probes.get_config())
    assert clone.get_config() == probes.get_config()


def test_mix_of_identical_layers_equals_the_layer():
    probes = StackedEdgeProbes([[0], [0, 1, 2]], [False, True], 3, 6, 1, 4, seed=5)
    probes.mix_logits.assign(np.array([[0, 0, 0], [2.0, -1.0, 0.3]], np.float32))
    h = np.random.default_rng(2).normal(size=(1, 1, 10, 6)).astype(np.float32)
    logits = probes(np.repeat(h, 3, axis=0)).numpy()  # gamma = 1, same initial weights
    np.testing.assert_allclose(logits[1], logits[0], atol=1e-5)


def synthetic(n_batches, size, seed, *, shuffle_labels=False, signal_state=1):
    """Batches of (S=3, R=2, N, H=8) features whose labels are a function of the vectors of
    state ``signal_state``: 3 * argmax(span 0's first 3 coordinates) + argmax(span 1's)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        f = rng.normal(size=(3, 2, size, 8)).astype(np.float32)
        x = f[signal_state]
        labels = (3 * x[0, :, :3].argmax(1) + x[1, :, :3].argmax(1)).astype(np.int32)
        if shuffle_labels:
            labels = rng.integers(0, 9, size).astype(np.int32)
        out.append((f, labels))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_task_is_learned_and_shuffled_labels_stay_at_chance(seed):
    def run(shuffle):
        probes = StackedEdgeProbes(
            [[0], [1], [0, 1, 2]], [False, False, True], 3, 8, 2, 9,
            projection_dim=16, hidden_dim=32, dropout=0.0, seed=seed,
        )  # fmt: skip
        train = synthetic(40, 100, seed, shuffle_labels=shuffle)
        dev = synthetic(10, 100, seed + 100, shuffle_labels=shuffle)
        results = train_edge_probes(probes, train, dev, epochs=12, learning_rate=3e-3)
        pred, gold, _ = predict_edge(probes, dev)
        f1 = [micro_f1(gold, pred[p]) for p in range(3)]
        assert [r.dev_f1 for r in results] == pytest.approx(f1)  # the best epoch is kept
        return f1, probes

    (noise, signal, mix), probes = run(False)
    # chance is 1/9; the mix also reads two states of pure noise, so it learns more slowly
    assert signal > 0.85 and mix > 0.7, (noise, signal, mix)
    assert noise < 0.25  # state 0 is independent of the labels: 1/9 = 0.11 is chance
    s = probes.mix_weights().numpy()[2]
    assert s[1] > s[0] and s[1] > s[2]  # the mix learns to weigh the informative state
    shuffled, _ = run(True)
    # 1000 dev labels independent of everything: accuracy ~ Binomial(1000, 1/9)/1000,
    # sd 0.01, so 0.25 is 14 sd above chance
    assert max(shuffled) < 0.25, shuffled


def test_joint_training_equals_training_each_probe_alone():
    specs = [([1], False), ([0, 1, 2], True), ([2], False)]
    train = synthetic(6, 40, 0)
    dev = synthetic(2, 40, 1)

    def make(chosen):
        return StackedEdgeProbes(
            [specs[i][0] for i in chosen], [specs[i][1] for i in chosen], 3, 8, 2, 9,
            projection_dim=8, hidden_dim=8, dropout=0.2, seed=4,
        )  # fmt: skip

    joint = make([0, 1, 2])
    joint_results = train_edge_probes(joint, train, dev, epochs=4, patience=1)
    for i in range(3):
        alone = make([i])
        (result,) = train_edge_probes(alone, train, dev, epochs=4, patience=1)
        mine = joint_results[i]
        assert (mine.epochs, mine.best_epoch) == (result.epochs, result.best_epoch)
        for key in ("loss", "val_loss", "val_f1", "lr"):
            np.testing.assert_allclose(mine.history[key], result.history[key], rtol=1e-5)
        for a, b in zip(joint.weights, alone.weights, strict=True):
            np.testing.assert_allclose(a.numpy()[i], b.numpy()[0], rtol=1e-4, atol=1e-6)
    # early stopping really differed between the probes here (else the test is weak)
    assert (
        len({r.epochs for r in joint_results}) > 1 or len({r.best_epoch for r in joint_results}) > 1
    )


def _write_treebank(path, n, seed):
    rng = np.random.default_rng(seed)
    words = "the dog cat said no a good day he can code python we it would be at bank".split()
    blocks = []
    for s in range(n):
        k = int(rng.integers(2, 8))
        lines = [f"# sent_id = {path.stem}-{s}"]
        for i in range(1, k + 1):
            head = 0 if i == 1 else int(rng.integers(1, i))
            rel = "root" if i == 1 else str(rng.choice(["nsubj", "obj:x", "det", "amod"]))
            tag = str(rng.choice(["NOUN", "VERB", "DET"]))
            w = words[int(rng.integers(len(words)))]
            lines.append(f"{i}\t{w}\t{w}\t{tag}\t_\t_\t{head}\t{rel}\t_\t_")
        blocks.append("\n".join(lines) + "\n")
    path.write_text("\n".join(blocks))
    return path


def _edge_args(files, model, out, cache, *extra):
    return [
        "probe", "edge", "--model", model, "--train", str(files[0]), "--dev", str(files[1]),
        "--test", str(files[2]), "--out", str(out), "--cache-dir", str(cache), *extra,
    ]  # fmt: skip


def test_cli_on_a_tiny_bert_writes_results_figures_and_resumes(tiny_bert_dir, tmp_path, capsys):
    files = [_write_treebank(tmp_path / f"{n}.conllu", 12, i) for i, n in enumerate("abc")]
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = _edge_args(files, f"tiny={tiny_bert_dir}", out, cache, "--epochs", "2", "--quiet")
    assert main(args) == 0
    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    assert data["meta"]["command"] == "probe edge"
    assert len(rows) == 2 * (3 + 3)  # tasks x (3 layers + mixes 0..0, 0..1, 0..2)
    for r in rows:
        assert 0.0 <= r["f1"] <= 1.0 and r["n"] > 0 and r["dev_n"] > 0
        if r["layer"] == "mix":
            assert sum(r["mix_weights"]) == pytest.approx(1.0, abs=1e-5)
            assert len(r["mix_weights"]) == r["mix_upto"] + 1
            assert 0.0 <= r["expected_layer"] <= r["mix_upto"]
    full = [r for r in rows if r["layer"] == "mix" and r["mix_upto"] == 2]
    assert all(r["cumulative_expected_layer"] is not None or r["f1"] == r["f1"] for r in full)
    n_pos = sum(len(s) for s in parse_conllu(files[2].read_text()))
    assert {r["n"] for r in rows} == {n_pos}  # every word, incl. the root for deprel
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header.startswith("model,task,layer,mix_upto,f1,n,dev_f1")
    assert (out / "figures" / "edge-pos.html").exists()
    assert (out / "figures" / "edge-deprel.html").exists()
    assert len(list(cache.iterdir())) >= 3  # train, dev, test entries
    capsys.readouterr()
    assert main(args[:-1]) == 0  # again: nothing to train
    printed = capsys.readouterr().out
    assert "edge tasks to train: none" in printed and "E_s[l]" in printed


def _head(src, dst, n):
    """The first ``n`` sentences of a CoNLL-U file (the whole EWT train takes long to read)."""
    blocks = src.read_text(encoding="utf-8").split("\n\n")[:n]
    dst.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return dst


@pytest.mark.integration
def test_minilm_on_an_ewt_slice_via_the_cli(shared_data, tmp_path, minilm):
    ewt = shared_data / "ud-english-ewt"
    out, cache = tmp_path / "out", tmp_path / "cache"
    sizes = {"train": 60, "dev": 30, "test": 30}
    files = [
        _head(ewt / f"en_ewt-ud-{s}.conllu", tmp_path / f"{s}.conllu", n) for s, n in sizes.items()
    ]
    args = _edge_args(
        files, "minilm=default", out, cache,
        "--epochs", "3", "--batch-size", "4", "--layers", "0", "3", "6", "--mixes", "full",
        "--quiet",
    )  # fmt: skip
    assert main(args) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    f1 = {(r["task"], r["layer"]): r["f1"] for r in rows}
    assert len(rows) == 2 * 4
    # 60 sentences suffice for MiniLM's lower layers to tag far above the majority class
    # (NOUN, ~0.17 of EWT's words) and to label relations far above chance
    assert f1["pos", 3] > 0.6 and f1["deprel", 3] > 0.35, f1
    mix = [r for r in rows if r["layer"] == "mix"]
    assert all(0.0 <= r["expected_layer"] <= 6.0 for r in mix)
    # the cache entries are the structural probes': the features of the same split with the
    # same settings are found in the cache, no new entry
    from bert_repro.probe.data import ProbeDataset

    entries = sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))
    store = ProbeDataset(files[0], cache_dir=cache).features(*minilm, progress=False)
    assert store.path.name in entries and len(entries) == 3


def test_settings_and_options_are_checked_once():
    from bert_repro.cli import build_parser
    from bert_repro.errors import ConfigError
    from bert_repro.probe.edge_config import EdgeSettings, edge_settings

    args = build_parser().parse_args(["probe", "edge", "--models", "a", "b", "--model", "c"])
    assert args.model == ["a", "b", "c"] and args.tasks == ["pos", "deprel"]
    assert args.mixes == "cumulative" and args.epochs == EdgeSettings().epochs
    with pytest.raises(ConfigError, match="'ner' is not valid; choose one of 'pos', 'deprel'"):
        EdgeSettings(tasks=["ner"])
    with pytest.raises(ConfigError, match="'all' is not valid.*'cumulative', 'full', 'none'"):
        EdgeSettings(mixes="all")
    with pytest.raises(ConfigError, match="dropout"):
        EdgeSettings(dropout=1.0)
    with pytest.raises(ConfigError, match="unknown option.*rank"):
        edge_settings(rank=4)
    settings, extraction = edge_settings(tasks="pos", epochs=3, cache_dtype="float16")
    assert settings.tasks == ("pos",) and settings.epochs == 3
    assert extraction.cache_dtype == "float16" and extraction.layers is None


MIRRORED_EDGE_JOB = """
import json
import numpy as np
from bert_repro.distribute import make_strategy

strategy = make_strategy("mirrored", devices=3)  # 3 logical CPUs, before TensorFlow starts
from bert_repro.probe.edge_model import StackedEdgeProbes
from bert_repro.probe.edge_train import train_edge_probes

S, R, H, C = 3, 2, 8, 5


def batches(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        b = int(rng.integers(1, 9))  # 1 and 2 rows leave replicas without rows
        labels = rng.integers(0, C, size=b).astype(np.int32)
        features = rng.normal(size=(S, R, b, H)).astype(np.float32)
        features[:, 0] += labels[None, :, None] * 0.5  # learnable
        out.append((features, labels))
    return out


train, dev = batches(10, 1), batches(3, 2)
found = {}
for name, st in (("one", None), ("mirrored", strategy)):
    probes = StackedEdgeProbes(
        [[0], [2], [0, 1, 2]], [False, False, True], S, H, R, C,
        projection_dim=6, hidden_dim=10, dropout=0.2, seed=3,
    )
    results = train_edge_probes(probes, train, dev, epochs=4, learning_rate=3e-3, strategy=st)
    found[name] = {
        "weights": [w.numpy().tolist() for w in probes.weights],
        "loss": [r.history["loss"] for r in results],
        "val_loss": [r.history["val_loss"] for r in results],
    }
print("RESULT", json.dumps(found))
"""


@pytest.mark.slow
def test_edge_training_on_three_mirrored_replicas_equals_one_device(tmp_path):
    """Under MirroredStrategy over 3 logical CPUs, each batch split by rows (some replicas
    get none) with the whole batch's dropout rows, the trained probes (written back into the
    caller's) and their loss histories equal one device's to float rounding."""
    found = run_result_job(MIRRORED_EDGE_JOB, tmp_path)
    one, got = found["one"], found["mirrored"]
    for a, b in zip(one["weights"], got["weights"], strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5)
    np.testing.assert_allclose(got["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(got["val_loss"], one["val_loss"], rtol=1e-5)
    assert all(h[-1] < h[0] for h in one["loss"])  # training moved them


def test_predict_edge_traces_once_per_probes_and_reads_the_current_weights():
    import gc
    import weakref

    from bert_repro.probe.edge_train import PREDICTOR_ATTRIBUTE, _Predictor

    probes = StackedEdgeProbes([[0], [0, 1, 2]], [False, True], 3, 8, 2, 9, seed=3)
    dev, test = synthetic(3, 20, 0), synthetic(2, 7, 1)  # other batch sizes
    first, second = predict_edge(probes, dev), predict_edge(probes, test)
    for got, data in ((first, dev), (second, test)):
        want = _Predictor(probes).predict(data)  # a fresh compiled step
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    step = getattr(probes, PREDICTOR_ATTRIBUTE)._predict_step
    assert step.experimental_get_tracing_count() == 1
    probes.out_bias.assign(probes.out_bias.numpy() + np.eye(9, dtype=np.float32)[4] * 1e3)
    assert (predict_edge(probes, dev)[0] == 4).all()  # the new weights, not a stale copy
    ref = weakref.ref(probes)
    del probes, step
    gc.collect()
    assert ref() is None  # the compiled step goes with the probes
