"""Run every benchmark in turn (``make bench``); each prints its own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RUNS = [
    ["bench_extraction.py", "--naive-n", "100"],
    ["bench_extraction.py", "--bert-base", "--n", "200", "--naive-n", "50"],
    ["bench_extraction_steps.py"],
    ["bench_finetune.py", "--steps", "4", "--rounds", "2"],
    ["bench_costs.py"],
    ["bench_probes.py", "--rounds", "2"],
    ["bench_scaling.py"],
    ["bench_distribute.py", "--n", "400"],
    ["bench_sweep_memory.py"],
    ["bench_cache_dtype.py"],
    ["bench_autotune.py"],
]

if __name__ == "__main__":
    for run in RUNS:
        print(f"\n$ python benchmarks/{' '.join(run)}", flush=True)
        subprocess.run([sys.executable, str(HERE / run[0]), *run[1:]], check=True)
