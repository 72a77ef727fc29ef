"""TensorFlow's malloc patch and its undoing (a fresh process: the patch is once per process)."""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import json, resource
    import numpy as np
    import tensorflow as tf
    from bert_repro import allocator

    def faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(50):
            a = np.ones(1 << 20, np.float32)  # 4 MiB, written: faults in fresh pages
            del a
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults()
    plain = faults()
    ds = tf.data.Dataset.from_generator(lambda: iter([1]), output_signature=tf.TensorSpec((), tf.int32))
    list(ds)  # TensorFlow's GeneratorDataset kernel sets M_TRIM_THRESHOLD=128 KiB
    patched = faults()
    done = allocator.keep_freed_memory()
    again = allocator.keep_freed_memory()
    restored = faults()
    print("RESULT", json.dumps([plain, patched, done, again, restored]))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_keep_freed_memory_undoes_tensorflows_trim_patch():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=300
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1]
    plain, patched, done, again, restored = __import__("json").loads(line.split(" ", 1)[1])
    # Under the patch every 4 MiB buffer is a fresh mapping: ~1024 page faults each time.
    assert patched > 50 * 500, (plain, patched, restored)
    # Undone, freed buffers are reused as before the patch: almost no new pages.
    assert restored < patched / 10, (plain, patched, restored)
    assert done is True and again is False
