"""TensorFlow's malloc patch and its undoing (a fresh process: the patch is once per process)."""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import ctypes, json, resource
    # Transparent huge pages would fault a 4 MiB buffer in as two 2 MiB pages when the host has
    # them free and as ~1,000 small ones when not: off for this process, the count is the same
    # on every host and at every moment (PR_SET_THP_DISABLE; NumPy's own madvise off too).
    ctypes.CDLL("libc.so.6").prctl(41, 1, 0, 0, 0)
    import os
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"
    import numpy as np
    import tensorflow as tf
    from bert_repro import allocator

    def faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(50):
            a = np.ones(1 << 20, np.float32)  # 4 MiB, written: faults in fresh pages
            del a
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    ds = tf.data.Dataset.from_generator(lambda: iter([1]), output_signature=tf.TensorSpec((), tf.int32))
    list(ds)  # TensorFlow's GeneratorDataset kernel sets M_TRIM_THRESHOLD=128 KiB
    # That freezes the mmap threshold where it stands (128 KiB in a process that has freed no
    # large block yet; higher otherwise, so how much the patch costs depends on the process's
    # past). Pin the worst case so the measurement is the same in every process:
    ctypes.CDLL("libc.so.6").mallopt(allocator.M_MMAP_THRESHOLD, 128 * 1024)
    patched = faults()
    done = allocator.keep_freed_memory()
    again = allocator.keep_freed_memory()
    restored = faults()
    print("RESULT", json.dumps([patched, done, again, restored]))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_keep_freed_memory_undoes_tensorflows_trim_patch():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=300
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1]
    patched, done, again, restored = __import__("json").loads(line.split(" ", 1)[1])
    # Every 4 MiB buffer is a fresh mapping, faulted in anew: ~1,000 small-page faults each.
    assert patched > 50 * 200, (patched, restored)
    # Undone, freed buffers are reused: almost no new pages.
    assert restored < patched / 10, (patched, restored)
    assert done is True and again is False
