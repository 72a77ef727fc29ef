"""Helpers shared by the benchmarks: data, timing, FLOP counts, the machine's matmul rate."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EWT = REPO.parent / "shared" / "data" / "ud-english-ewt"


def ewt_sentences(split: str = "dev", n: int | None = None) -> list[list[str]]:
    """Word lists of EWT sentences (syntactic words only)."""
    import conllu

    out = []
    with open(EWT / f"en_ewt-ud-{split}.conllu", encoding="utf-8") as f:
        for sent in conllu.parse_incr(f):
            out.append([t["form"] for t in sent if isinstance(t["id"], int)])
            if n is not None and len(out) >= n:
                break
    return out


def flops_per_token(config, seq_len: float) -> float:
    """Forward FLOPs per token of a BERT encoder (multiply-add = 2 FLOPs).

    Per layer and token: Q, K, V, O projections ``4 * 2H^2``, feed-forward ``2 * 2HI``,
    attention scores and weighted sum ``2 * 2TH`` (T = sequence length).
    """
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return n * (8 * h * h + 4 * h * i + 4 * seq_len * h)


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """This machine's TF float32 matmul rate (GFLOP/s), best of a few runs."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.matmul(a, b).numpy()
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            c = tf.matmul(a, b)
        c.numpy()
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - t) / 1e9)
    return best


def timed_rounds(methods: dict, rounds: int = 3) -> dict[str, float]:
    """Run each method once per round, interleaved (noise hits all alike); median seconds."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    head = " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    line = "-|-".join("-" * w for w in widths)
    body = [
        " | ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True))
        for r in rows
    ]
    return "\n".join([head, line, *body])


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return "" if v is None else str(v)


def run_measured(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd`` under ``/usr/bin/time -v``; return (wall seconds, peak RSS in GB, stdout).

    Exits with the command's error output if it fails.
    """
    import re
    import subprocess
    import sys

    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(proc.stderr[-4000:])
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return wall, rss_kb / 1024**2, proc.stdout


def folder_bytes(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far, from /proc/stat (zeros where unavailable)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def steal_since(start: tuple[int, int]) -> float:
    """Share of CPU time the hypervisor gave to other machines since ``start`` (cpu_times()):
    a benchmark run with a high share ran on a contended host."""
    steal, total = cpu_times()
    return (steal - start[0]) / max(1, total - start[1])
