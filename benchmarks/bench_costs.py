"""Where the time goes: the comparator's cost in model passes, and a probe epoch vs extraction.

1. ``BertComparator`` with N = 1, 2, 3 fine-tuned models (copies of the shipped MiniLM) over
   the same EWT sentences, next to one plain extraction pass: the base is computed once per
   batch, so the cost should grow as (N + 1) passes, not 2N.
2. Extracting the word features of EWT train (all layers, into a fresh cache) vs one epoch of
   distance-probe training on one layer of those cached features.

    .venv/bin/python benchmarks/bench_costs.py [--n 600] [--train-limit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import EWT, ewt_sentences, table, timed_rounds  # noqa: E402


def comparator_costs(n: int, rounds: int) -> None:
    from bert_repro.features import hidden_states
    from bert_repro.models import load_bert
    from bert_repro.plot import BertComparator

    base, tok = load_bert()
    copies = [load_bert()[0] for _ in range(3)]
    texts = [" ".join(s) for s in ewt_sentences("dev", n)]

    def compare(k):
        bc = BertComparator(base, copies[:k], tok, progress=False)
        return lambda: bc.compare(texts, len(texts), sample_tokens=0)

    methods = {"1 extraction pass": lambda: hidden_states(base, tok, texts, progress=False)}
    methods.update({f"compare N={k}": compare(k) for k in (1, 2, 3)})
    for f in methods.values():
        f()
    secs = timed_rounds(methods, rounds)
    one = secs["1 extraction pass"]
    rows = [
        {
            "run": name,
            "seconds": s,
            "passes (measured)": s / one,
            "passes (N+1)": None if name.startswith("1 ") else int(name[-1]) + 1,
            "passes (2N)": None if name.startswith("1 ") else 2 * int(name[-1]),
        }
        for name, s in secs.items()
    ]
    print(f"comparator over {len(texts)} EWT dev sentences (MiniLM copies), median of {rounds}")
    print(table(rows, list(rows[0])))


def probe_vs_extraction(limit: int | None) -> None:
    from bert_repro.models import load_bert
    from bert_repro.probe.data import ProbeDataset
    from bert_repro.probe.trainer import train_probe

    model, tok = load_bert()
    with tempfile.TemporaryDirectory() as cache:
        train = ProbeDataset(EWT / "en_ewt-ud-train.conllu", cache_dir=cache)
        if limit:
            train = train.subset(slice(0, limit))
        dev = ProbeDataset(EWT / "en_ewt-ud-dev.conllu", cache_dir=cache).subset(slice(0, 200))
        t = time.perf_counter()
        store = train.features(model, tok, progress=False)
        extract = time.perf_counter() - t
        dev_store = dev.features(model, tok, progress=False)
        layer = 3
        tr = train.tf_dataset(store, layer, "distance", shuffle=True, seed=0)
        dv = dev.tf_dataset(dev_store, layer, "distance")
        hidden = store.hidden_size
        train_probe("distance", tr, dv, model_dim=hidden, probe_rank=128, epochs=1)  # warm-up
        t = time.perf_counter()
        train_probe("distance", tr, dv, model_dim=hidden, probe_rank=128, epochs=1)
        epoch = time.perf_counter() - t
    rows = [
        {
            "what": f"extract all {store.num_layers} layers of {len(train)} sentences",
            "seconds": extract,
        },
        {"what": "one distance-probe epoch on one layer (rank 128, batch 20)", "seconds": epoch},
        {"what": "epoch / extraction", "seconds": epoch / extract},
    ]
    print(f"\nprobe training vs extraction (MiniLM, EWT train, {int(store.offsets[-1])} words)")
    print(table(rows, ["what", "seconds"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=600, help="EWT dev sentences for the comparator")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train-limit", type=int, default=None, help="EWT train sentences")
    args = p.parse_args()
    comparator_costs(args.n, args.rounds)
    probe_vs_extraction(args.train_limit)


if __name__ == "__main__":
    main()
