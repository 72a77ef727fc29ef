"""The cache under real process faults: a writer killed with SIGKILL, two writers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

import bert_repro.features as features
from bert_repro.cache import cached_word_features
from bert_repro.features import word_features

SENTS = [["the", "dog", "is", "good"], ["coding", "python", "code"], ["a"], ["we", "said", "no"]]
CORPUS = [s + ["the"] * (i % 5) for i, s in enumerate(SENTS * 10)]  # 40 sentences

WRITER = textwrap.dedent(
    """
    import sys, time
    import bert_repro.cache as cache
    import bert_repro.features as features
    from bert_repro.models import load_bert
    sys.path.insert(0, {tests!r})
    from test_cache_processes import CORPUS

    cache.CHECKPOINT_SECONDS = 0.0
    real = features.iter_word_batches
    def slow(*a, **k):
        for n, item in enumerate(real(*a, **k)):
            time.sleep(float(sys.argv[3]))
            print("BATCH", n, flush=True)
            yield item
    features.iter_word_batches = slow
    model, tok = load_bert(sys.argv[1])
    store = cache.cached_word_features(model, tok, CORPUS, sys.argv[2], max_batch=4,
                                       progress=False)
    print("DONE", store.path, flush=True)
    """
).format(tests=os.path.dirname(__file__))


def _writer(tiny_bert_dir, cache_dir, delay):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tiny_bert_dir), str(cache_dir), str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _check_equal(store, model, tok):
    ref = word_features(model, tok, CORPUS, progress=False)
    for i, r in enumerate(ref):
        for k in range(store.num_layers):
            np.testing.assert_allclose(store.sentence(i, k), r[k], atol=1e-6)


def test_killed_writer_resumes_and_never_exposes_a_partial_entry(
    tiny_bert_dir, tiny_bert, tmp_path, monkeypatch
):
    proc = _writer(tiny_bert_dir, tmp_path, 0.3)
    for line in proc.stdout:
        if line.startswith("BATCH 3"):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []

    model, tok = tiny_bert
    real = features.iter_word_batches
    seen = []

    def counting(m, t, sentences, **kwargs):
        seen.append(len(sentences))
        yield from real(m, t, sentences, **kwargs)

    monkeypatch.setattr(features, "iter_word_batches", counting)
    store = cached_word_features(model, tok, CORPUS, tmp_path, max_batch=4, progress=False)
    assert len(seen) == 1 and 0 < seen[0] <= len(CORPUS) - 12  # >= 3 batches were kept
    _check_equal(store, model, tok)


def test_two_writers_of_the_same_entry_do_not_collide(tiny_bert_dir, tiny_bert, tmp_path):
    a = _writer(tiny_bert_dir, tmp_path, 0.05)
    time.sleep(0.5)
    b = _writer(tiny_bert_dir, tmp_path, 0.05)
    out_a, _ = a.communicate(timeout=240)
    out_b, _ = b.communicate(timeout=240)
    assert a.returncode == 0 and b.returncode == 0
    paths = {line.split()[1] for line in (out_a + out_b).splitlines() if line.startswith("DONE")}
    assert len(paths) == 1
    batches = [out.count("BATCH") for out in (out_a, out_b)]
    assert sorted(batches)[0] == 0  # the second waited for the first and then only read
    model, tok = tiny_bert
    store = cached_word_features(model, tok, CORPUS, tmp_path, max_batch=4, progress=False)
    _check_equal(store, model, tok)
