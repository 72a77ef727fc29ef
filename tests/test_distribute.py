"""Extraction under tf.distribute.MirroredStrategy over two logical CPU devices.

Logical devices must be configured before TensorFlow initialises, so this runs in a fresh
Python process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from bert_repro.features import hidden_states, word_features
    from bert_repro.models import load_bert

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    model, tok = load_bert(sys.argv[1], strategy=strategy)
    plain, _ = load_bert(sys.argv[1])
    texts = ["the dog is good", "a", "coding python code", "the bank of the river", "no"]
    d = hidden_states(model, tok, texts, max_batch=4, strategy=strategy, progress=False)
    p = hidden_states(plain, tok, texts, max_batch=4, progress=False)
    for a, b in zip(d, p):
        assert a.shape == b.shape, (a.shape, b.shape)
        assert np.abs(a - b).max() < 1e-5
    sents = [t.split() for t in texts]
    d = word_features(model, tok, sents, max_batch=3, strategy=strategy, progress=False)
    p = word_features(plain, tok, sents, max_batch=3, progress=False)
    for a, b in zip(d, p):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-5
    print("MIRRORED-OK")
    """
)


def test_mirrored_strategy_gives_the_same_result(tiny_bert_dir):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_bert_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "MIRRORED-OK" in proc.stdout, proc.stderr[-3000:]
