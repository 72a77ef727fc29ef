"""Keep glibc's malloc from returning every large freed block to the kernel.

TensorFlow 2.21's ``GeneratorDataset`` kernel (``tf.data.Dataset.from_generator``) calls
``mallopt(M_TRIM_THRESHOLD, 128 KiB)`` the first time a generator pipeline runs in a process
(it logs "Memory patch applied: M_TRIM_THRESHOLD=128 kb was set."). Setting any of glibc's
thresholds turns off its dynamic mmap threshold, so from then on every allocation above
128 KiB (each activation tensor of a BERT step) is a fresh ``mmap`` that is zero-filled by page
faults and ``munmap``-ed when freed. Measured here: a MiniLM fine-tuning step went from
2.2 to 3.4 s with ~5x the system time, the same whether batches came from a generator or from
tensors, once any generator had run in the process (``benchmarks/bench_allocator.py``).

:func:`keep_freed_memory` lets TensorFlow apply its one-shot patch first, then sets the
thresholds to the values glibc's dynamic adjustment reaches on 64-bit Linux (mmap threshold
32 MiB, trim threshold twice that), so freed activations are reused as they were before the
patch. It does nothing off glibc or when ``BERT_REPRO_MALLOC=tensorflow`` is set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc's ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit: the ceiling of its dynamic threshold."""
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
"""What glibc's dynamic rule sets the trim threshold to with that mmap threshold."""

_state = {"done": False}


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return None


def keep_freed_memory() -> bool:
    """Undo TensorFlow's malloc trim patch in this process (once; cheap afterwards).

    Returns:
        Whether the thresholds were set (False off glibc, when opted out, or after the first
        call).
    """
    if _state["done"]:
        return False
    _state["done"] = True
    if os.environ.get("BERT_REPRO_MALLOC", "").lower() == "tensorflow":
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    import tensorflow as tf

    from .pipeline import quiet_data_options

    empty = tf.data.Dataset.from_generator(
        lambda: iter(()), output_signature=tf.TensorSpec((), tf.int32)
    ).with_options(quiet_data_options())
    for _ in empty:  # runs the GeneratorDataset kernel, which applies TensorFlow's patch
        pass
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
