"""float16 vs float32 word-feature cache: the probe metrics, the cache size, the peak memory.

Runs the same probe sweep in child processes (shipped MiniLM by default, EWT train / dev /
test): with a float32 cache, with a float16 cache (same seed), and with a float32 cache and
another seed, the noise floor that a difference must be set against. Prints the metrics side
by side with the differences, the cache sizes on disk and each run's peak RSS.

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
RUNS = {"float32": ("float32", 0), "float16": ("float16", 0), "float32 seed 1": ("float32", 1)}


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
        for i, (name, (dtype, seed)) in enumerate(RUNS.items()):
            out, cache = Path(work) / f"out{i}", Path(work) / f"cache-{dtype}"
            cmd = [cli, "probe", "sweep", "--quiet", "--epochs", str(args.epochs)]
            cmd += ["--layers", *map(str, args.layers), "--cache-dtype", dtype]
            cmd += ["--seed", str(seed), "--out", str(out), "--cache-dir", str(cache)]
            for split in ("train", "dev", "test"):
                cmd += [f"--{split}", str(EWT / f"en_ewt-ud-{split}.conllu")]
            cmd += ["--model", args.model] if args.model else []
            cmd += ["--limit", str(args.limit)] if args.limit else []
            wall, rss, _ = run_measured(cmd)
            rows = json.loads((out / "results.json").read_text())["rows"]
            runs[name] = {
                "wall": wall,
                "rss": rss,
                "cache_GB": folder_bytes(cache) / 1e9,
                "rows": {(r["layer"], r["kind"]): r for r in rows},
            }
    out_rows = []
    worst = {"float16": 0.0, "float32 seed 1": 0.0}
    for key in sorted(runs["float32"]["rows"]):
        ref = runs["float32"]["rows"][key]
        for m in METRICS:
            if ref.get(m) is None:
                continue
            row = {"layer": key[0], "metric": m}
            for name, r in runs.items():
                row[name] = f"{r['rows'][key][m]:.4f}"
            for name in worst:
                d = runs[name]["rows"][key][m] - ref[m]
                worst[name] = max(worst[name], abs(d))
                row[f"{name} - float32"] = f"{d:+.4f}"
            out_rows.append(row)
    print(f"probe sweep, {args.epochs} epochs, layers {args.layers}, test metrics")
    print(table(out_rows, list(out_rows[0])))
    print(
        f"largest |difference| to float32 seed 0: float16 cache {worst['float16']:.4f}, "
        f"another seed {worst['float32 seed 1']:.4f}"
    )
    print(
        table(
            [
                {"run": n, "cache GB": r["cache_GB"], "peak RSS GB": r["rss"], "wall s": r["wall"]}
                for n, r in runs.items()
            ],
            ["run", "cache GB", "peak RSS GB", "wall s"],
        )
    )


if __name__ == "__main__":
    main()
