"""Scaling of feature extraction into the on-disk cache: time and peak memory vs corpus size.

Each size runs in its own process (so its peak resident memory is its own), with the shipped
MiniLM by default or random bert-base-size weights (``--bert-base``), over the first N EWT
train sentences, all layers cached.

    .venv/bin/python benchmarks/bench_scaling.py [--sizes 1000 4000 12544] [--bert-base]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import table  # noqa: E402

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
from _common import ewt_sentences
from bert_repro.cache import cached_word_features
n, cache, bert_base, dtype = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4]
if bert_base:
    from bench_extraction import random_bert_base
    model, tok = random_bert_base()
else:
    from bert_repro.models import load_bert
    model, tok = load_bert()
sents = ewt_sentences("train", n)
t = time.perf_counter()
store = cached_word_features(model, tok, sents, cache, dtype=dtype, progress=False)
dt = time.perf_counter() - t
size = sum(f.stat().st_size for f in store.path.iterdir())
print(json.dumps({{"sentences": len(sents), "words": int(store.offsets[-1]), "seconds": dt,
    "cache_MB": size / 1e6,
    "peak_RSS_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 12544])
    p.add_argument("--bert-base", action="store_true")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    child = CHILD.format(bench=str(Path(__file__).parent))
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    child,
                    str(n),
                    cache,
                    "1" if args.bert_base else "0",
                    args.dtype,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode:
                sys.exit(out.stderr[-3000:])
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["process_seconds"] = time.perf_counter() - t
        row["words/s"] = row["words"] / row["seconds"]
        rows.append(row)
        print(table(rows[-1:], list(row)), flush=True)
    base = rows[0]
    for prev, r in zip([None, *rows[:-1]], rows, strict=True):
        r["time x"] = r["seconds"] / base["seconds"]
        r["size x"] = r["words"] / base["words"]
        if prev is not None:  # the rate of the extra words: constant if growth is linear
            r["marginal words/s"] = (r["words"] - prev["words"]) / (r["seconds"] - prev["seconds"])
    words = np.array([r["words"] for r in rows], dtype=float)
    secs = np.array([r["seconds"] for r in rows])
    slope, fixed = np.polyfit(words, secs, 1)
    fit = fixed + slope * words
    r2 = 1 - np.sum((secs - fit) ** 2) / np.sum((secs - secs.mean()) ** 2)
    print()
    print(
        table(
            rows,
            [
                "sentences",
                "words",
                "seconds",
                "words/s",
                "marginal words/s",
                "size x",
                "time x",
                "peak_RSS_MB",
                "cache_MB",
            ],
        )
    )
    print(
        f"least-squares line: seconds = {fixed:.1f} + words / {1 / slope:,.0f} (R^2 {r2:.4f}); "
        "(the fixed part: tracing the compiled forward pass once)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
