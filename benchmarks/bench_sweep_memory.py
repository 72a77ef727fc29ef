"""Peak memory of a probe sweep over every layer of a bert-base-size model on all of EWT.

Saves a bert-base-shaped BERT with random weights (12 layers x 768, the uncased vocabulary of
the shipped model's tokenizer) to a temporary folder, then runs, in a child process under
``/usr/bin/time -v``::

    bert-repro probe sweep --model bertbase=<folder> --train/--dev/--test <EWT> --epochs E

and reports its wall time, peak resident memory and the size of the feature cache on disk.
Random weights give the same shapes, FLOPs and memory as the real model (not its metrics).

    .venv/bin/python benchmarks/bench_sweep_memory.py [--epochs 1] [--limit N]
        [--cache-dtype float32|float16]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import EWT, folder_bytes, run_measured  # noqa: E402


def save_random_bert_base(folder: Path) -> None:
    from bench_extraction import random_bert_base

    model, tok = random_bert_base()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=1, help="probe epochs (memory does not grow)")
    p.add_argument("--limit", type=int, default=None, help="sentences per split (default all)")
    p.add_argument("--cache-dtype", choices=("float32", "float16"), default="float32")
    p.add_argument("--keep", default=None, help="keep the work folder here")
    args = p.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / "bertbase"
    if not (model_dir / "config.json").exists():
        save_random_bert_base(model_dir)
    cmd = [str(Path(sys.executable).with_name("bert-repro")), "probe", "sweep"]
    cmd += ["--model", f"bertbase={model_dir}", "--epochs", str(args.epochs), "--quiet"]
    for split in ("train", "dev", "test"):
        cmd += [f"--{split}", str(EWT / f"en_ewt-ud-{split}.conllu")]
    cmd += ["--out", str(work / "out"), "--cache-dir", str(work / "cache")]
    cmd += ["--cache-dtype", args.cache_dtype]
    cmd += ["--limit", str(args.limit)] if args.limit else []
    wall, rss, _ = run_measured(cmd)
    print(f"command: {' '.join(cmd[1:])}")
    print(f"wall time: {wall / 60:.1f} min")
    print(f"peak resident memory: {rss:.2f} GB")
    print(f"feature cache on disk: {folder_bytes(work / 'cache') / 1e9:.2f} GB")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
