"""Extraction before and after changes: this tree's bert_repro against earlier git revisions'.

The package at ``--base`` (default ``HEAD~1``) and at each ``--also`` revision is unpacked with
``git archive`` into a temporary folder and imported under another name (``bert_repro_0``, ...;
the package imports itself relatively), next to this tree's ``bert_repro``. Each version loads
its own copy of the model (so each builds and traces its own extractor) and runs
``hidden_states``, ``word_features`` and ``cached_word_features`` (into a fresh folder each
time) on the same EWT dev sentences, interleaved round by round. Prints each method's tokens/s
for every version (median and min-max over the rounds), the ratio to the first version (of the
medians, and round by round), and the share of this machine's float32 matmul rate measured in
the same run.

    .venv/bin/python benchmarks/bench_versions.py [--base HEAD~1] [--also REV ...] [--n 400]
        [--rounds 5] [--bert-base]
"""

from __future__ import annotations

import argparse
import importlib
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    REPO,
    cpu_times,
    ewt_sentences,
    flops_per_token,
    matmul_gflops,
    steal_since,
    table,
)


def import_revision(rev: str, into: Path, name: str):
    """``bert_repro`` as of git revision ``rev``, imported as the package ``name``."""
    blob = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "bert_repro"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    (into / "bert_repro").rename(into / name)
    if str(into) not in sys.path:
        sys.path.insert(0, str(into))
    return importlib.import_module(name)


def short(rev: str) -> str:
    """The short hash of a git revision."""
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def load_model(pkg, bert_base: bool):
    """``(model, tokenizer)``: MiniLM, or bert-base shapes with random weights (seeded, so both
    versions get the same weights) and the MiniLM tokenizer."""
    models = importlib.import_module(f"{pkg.__name__}.models")
    if not bert_base:
        return models.load_bert()
    import tensorflow as tf
    from transformers import BertConfig, TFBertModel

    _, tok = models.load_bert()
    tf.random.set_seed(0)
    model = TFBertModel(BertConfig(output_hidden_states=True))
    model(model.dummy_inputs)
    return model, tok


def methods_of(pkg, model, tok, sentences, texts, scratch: Path) -> dict:
    features = importlib.import_module(f"{pkg.__name__}.features")
    cache = importlib.import_module(f"{pkg.__name__}.cache")

    def cached():
        folder = Path(tempfile.mkdtemp(dir=scratch))
        cache.cached_word_features(model, tok, sentences, folder, progress=False)
        shutil.rmtree(folder)

    return {
        "hidden_states": lambda: features.hidden_states(model, tok, texts, progress=False),
        "word_features": lambda: features.word_features(model, tok, sentences, progress=False),
        "cached_word_features": cached,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", default="HEAD~1", help="git revision to compare against")
    p.add_argument("--also", nargs="*", default=[], help="revisions between the base and this tree")
    p.add_argument("--n", type=int, default=400, help="EWT dev sentences")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--bert-base", action="store_true", help="random bert-base-size weights")
    args = p.parse_args()

    import bert_repro

    tmp = Path(tempfile.mkdtemp(prefix="bench-versions-"))
    try:
        packages = {f"{short(args.base)} (before)": import_revision(args.base, tmp, "bert_repro_0")}
        for i, rev in enumerate(args.also, 1):
            packages[short(rev)] = import_revision(rev, tmp, f"bert_repro_{i}")
        packages["this tree"] = bert_repro
        sentences = ewt_sentences("dev", args.n)
        texts = [" ".join(s) for s in sentences]
        versions = {}
        for label, pkg in packages.items():
            model, tok = load_model(pkg, args.bert_base)
            versions[label] = methods_of(pkg, model, tok, sentences, texts, tmp)
        from bert_repro.pipeline import encode_texts, encode_words

        tokens = {
            "hidden_states": sum(len(e) for e in encode_texts(tok, texts)),
            "word_features": sum(len(e) for e in encode_words(tok, sentences)),
        }
        tokens["cached_word_features"] = tokens["word_features"]
        for fns in versions.values():  # first calls: traces
            for fn in fns.values():
                fn()
        times = {(v, m): [] for v in versions for m in versions[v]}
        start = cpu_times()
        for _ in range(args.rounds):
            for method in tokens:
                for v, fns in versions.items():
                    t = time.perf_counter()
                    fns[method]()
                    times[v, method].append(time.perf_counter() - t)
        steal = steal_since(start)
        peak = matmul_gflops()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cfg = model.config
    mean_len = tokens["hidden_states"] / len(texts)
    fpt = flops_per_token(cfg, mean_len)
    rows = []
    for method, n in tokens.items():
        before = None
        for v in versions:
            secs = times[v, method]
            rate = n / statistics.median(secs)
            before = before or rate
            per_round = [
                a / b for a, b in zip(times[next(iter(versions)), method], secs, strict=True)
            ]
            rows.append(
                {
                    "method": method,
                    "version": v,
                    "tokens/s": rate,
                    "min-max": f"{n / max(secs):,.0f}-{n / min(secs):,.0f}",
                    "x first": rate / before,
                    "x first, per round": " ".join(f"{r:.2f}" for r in per_round),
                    "% of matmul peak": 100 * rate * fpt / 1e9 / peak,
                }
            )
    print(
        f"model: {cfg.num_hidden_layers} layers x {cfg.hidden_size}; {len(texts)} EWT dev "
        f"sentences, {tokens['hidden_states']} wordpieces; matmul peak {peak:.0f} GFLOP/s; "
        f"median of {args.rounds} interleaved rounds; CPU steal {100 * steal:.1f}%"
    )
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
