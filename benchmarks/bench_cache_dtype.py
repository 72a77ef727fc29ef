"""float16 vs float32 word-feature cache: the probe metrics, the cache size, the peak memory.

Runs the same probe sweep twice in child processes (shipped MiniLM by default, EWT train /
dev / test, same seed), once with each cache dtype, and prints both sets of metrics side by
side with their largest difference, the cache sizes on disk and each run's peak RSS.

    .venv/bin/python benchmarks/bench_cache_dtype.py [--layers 3 6] [--epochs 5] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import EWT, folder_bytes, run_measured, table  # noqa: E402

METRICS = ("uuas", "dspr", "root_acc", "nspr")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: the shipped MiniLM)")
    p.add_argument("--layers", type=int, nargs="+", default=[3, 6])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--limit", type=int, default=None, help="sentences per split (default all)")
    args = p.parse_args()
    cli = str(Path(sys.executable).with_name("bert-repro"))
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-dtype-") as work:
        for dtype in ("float32", "float16"):
            cmd = [cli, "probe", "sweep", "--quiet", "--epochs", str(args.epochs)]
            cmd += ["--layers", *map(str, args.layers), "--cache-dtype", dtype]
            cmd += ["--out", f"{work}/{dtype}/out", "--cache-dir", f"{work}/{dtype}/cache"]
            for split in ("train", "dev", "test"):
                cmd += [f"--{split}", str(EWT / f"en_ewt-ud-{split}.conllu")]
            cmd += ["--model", args.model] if args.model else []
            cmd += ["--limit", str(args.limit)] if args.limit else []
            wall, rss, _ = run_measured(cmd)
            rows = json.loads(Path(f"{work}/{dtype}/out/results.json").read_text())["results"]
            runs[dtype] = {
                "wall": wall,
                "rss": rss,
                "cache_GB": folder_bytes(Path(f"{work}/{dtype}/cache")) / 1e9,
                "rows": {(r["layer"], r["kind"]): r for r in rows},
            }
    out = []
    worst = 0.0
    for key in sorted(runs["float32"]["rows"]):
        a, b = runs["float32"]["rows"][key], runs["float16"]["rows"][key]
        for m in METRICS:
            if a.get(m) is None:
                continue
            worst = max(worst, abs(a[m] - b[m]))
            out.append(
                {
                    "layer": key[0],
                    "metric": m,
                    "float32": f"{a[m]:.4f}",
                    "float16": f"{b[m]:.4f}",
                    "diff": f"{b[m] - a[m]:+.4f}",
                }
            )
    print(f"probe sweep, {args.epochs} epochs, layers {args.layers}, test metrics")
    print(table(out, ["layer", "metric", "float32", "float16", "diff"]))
    print(f"largest |difference|: {worst:.4f}")
    print(
        table(
            [
                {
                    "cache": d,
                    "cache GB": r["cache_GB"],
                    "peak RSS GB": r["rss"],
                    "wall s": r["wall"],
                }
                for d, r in runs.items()
            ],
            ["cache", "cache GB", "peak RSS GB", "wall s"],
        )
    )


if __name__ == "__main__":
    main()
