"""Peak memory of a probe sweep over every layer of a bert-base-size model on all of EWT.

Saves a bert-base-shaped BERT with random weights (12 layers x 768, the uncased vocabulary of
the shipped model's tokenizer) to a temporary folder, then runs, in a child process under
``/usr/bin/time -v``::

    bert-repro probe sweep --model bertbase=<folder> --train/--dev/--test <EWT> --epochs E

and reports its wall time, peak resident memory and the size of the feature cache on disk.
Random weights give the same shapes, FLOPs and memory as the real model (not its metrics).

    .venv/bin/python benchmarks/bench_sweep_memory.py [--epochs 1] [--limit N] [--dtype float32]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import EWT  # noqa: E402


def save_random_bert_base(folder: Path) -> None:
    from bench_extraction import random_bert_base

    model, tok = random_bert_base()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=1, help="probe epochs (memory does not grow)")
    p.add_argument("--limit", type=int, default=None, help="sentences per split (default all)")
    p.add_argument("--keep", default=None, help="keep the work folder here")
    args = p.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / "bertbase"
    if not (model_dir / "config.json").exists():
        save_random_bert_base(model_dir)
    cmd = [
        "/usr/bin/time",
        "-v",
        str(Path(sys.executable).with_name("bert-repro")),
        "probe",
        "sweep",
        "--model",
        f"bertbase={model_dir}",
        "--train",
        str(EWT / "en_ewt-ud-train.conllu"),
        "--dev",
        str(EWT / "en_ewt-ud-dev.conllu"),
        "--test",
        str(EWT / "en_ewt-ud-test.conllu"),
        "--epochs",
        str(args.epochs),
        "--out",
        str(work / "out"),
        "--cache-dir",
        str(work / "cache"),
        "--quiet",
    ]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(proc.stderr[-4000:])
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    cache_bytes = sum(f.stat().st_size for f in (work / "cache").rglob("*") if f.is_file())
    print(f"command: {' '.join(cmd[2:])}")
    print(f"wall time: {wall / 60:.1f} min")
    print(f"peak resident memory: {rss_kb / 1024**2:.2f} GB")
    print(f"feature cache on disk: {cache_bytes / 1e9:.2f} GB")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
