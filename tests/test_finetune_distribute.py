"""Fine-tuning under tf.distribute.MirroredStrategy over two logical CPUs (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

MIRRORED = textwrap.dedent(
    """
    import sys, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    sys.path.insert(0, sys.argv[3])
    from test_finetune_train import keyword_examples
    from bert_repro.finetune import TaskData, finetune, paper_defaults
    from bert_repro.models import load_bert
    config = paper_defaults("agnews", learning_rate=2e-3, batch_size=8, max_steps=4,
                            max_seq_length=16)
    data = TaskData(keyword_examples(32, 0), keyword_examples(5, 1))  # 5: a partial batch
    result = finetune("agnews", sys.argv[1], data=data, config=config, out_dir=sys.argv[2],
                      strategy=strategy)
    encoder, _ = load_bert(sys.argv[2])
    same = all(np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(encoder.weights, result.model.encoder.weights))
    print("replicas", strategy.num_replicas_in_sync, "steps", result.steps, "same", same,
          "n_eval", result.metrics["n_examples"])
    """
)


@pytest.mark.slow
def test_finetune_under_mirrored_strategy_on_two_logical_cpus(tiny_bert_dir, tmp_path):
    """Logical devices must be set before TensorFlow starts, hence a fresh process."""
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(script), str(tiny_bert_dir), str(tmp_path / "m"),
         os.path.dirname(__file__)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas 2 steps 4 same True n_eval 5" in done.stdout
