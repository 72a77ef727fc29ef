"""Probe training: the probes of K layers trained jointly (train_probes) vs one by one (train_probe).

MiniLM word features of the first ``--train`` EWT train and ``--dev`` dev sentences (extracted
once into a temporary cache, or ``--cache-dir``), both probe kinds, rank ``--rank``, the same
seed (so the same batches) and the same number of epochs (``--epochs``, early stopping off;
the LR still decays on plateau, alike in both), measured side by side in one process:

* ``1 layer alone``: ``train_probe`` for each kind on one layer, what a layer costs today;
* ``1 layer jointly``: ``train_probes`` on that layer (both kinds in one model);
* ``K layers one by one``: ``train_probe`` for every layer and kind, as the sweep does today;
* ``K layers jointly``: ``train_probes`` on all K layers at once (NumPy batches from
  ``ProbeDataset.layer_batches``; once more from ``tf_layers_dataset``, the tf.data input;
  once more with plain random batches, ``group_by_length=False``, as Hewitt & Manning draw
  them, against the default batches of similar lengths).

Also one epoch of batches alone (the data pipeline, no training), and how far the joint
probes are from the one-by-one ones, next to how far ``train_probe`` moves on its own when its
input changes by a float32 ulp (the noise floor of "the same trajectory").

    .venv/bin/python benchmarks/bench_probes.py [--epochs 3] [--train 2000] [--dev 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import EWT, cpu_times, matmul_gflops, steal_since, table, timed_rounds  # noqa: E402

KINDS = ("distance", "depth")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train", type=int, default=2000, help="EWT train sentences")
    p.add_argument("--dev", type=int, default=500, help="EWT dev sentences")
    p.add_argument("--rank", type=int, default=128)
    p.add_argument("--layer", type=int, default=None, help="the single layer (default middle)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved repetitions (median)")
    p.add_argument("--cache-dir", default=None, help="feature cache (default a temp folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-probes-") as tmp:
        run(args, Path(args.cache_dir or tmp))


def extract(cache: Path, n_train: int, n_dev: int):
    from bert_repro.models import load_bert, model_dims
    from bert_repro.probe.data import ProbeDataset

    model, tok = load_bert()
    num_layers, hidden = model_dims(model)
    splits = {}
    for split, n in (("train", n_train), ("dev", n_dev)):
        ds = ProbeDataset(EWT / f"en_ewt-ud-{split}.conllu", cache_dir=cache).subset(range(n))
        splits[split] = (ds, ds.features(model, tok, progress=False))
    return splits, num_layers + 1, hidden


def run(args, cache: Path) -> None:
    from bert_repro.probe.joint import train_probes
    from bert_repro.probe.trainer import train_probe

    t0 = time.perf_counter()
    splits, num_states, hidden = extract(cache, args.train, args.dev)
    (tr, tr_store), (dv, dv_store) = splits["train"], splits["dev"]
    print(
        f"features: MiniLM, {len(tr)} train / {len(dv)} dev EWT sentences "
        f"({int(tr.lengths.sum())} / {int(dv.lengths.sum())} words), {num_states} hidden "
        f"states of {hidden}, extracted in {time.perf_counter() - t0:.0f}s"
    )
    layers = list(range(num_states))
    one = [args.layer if args.layer is not None else num_states // 2]
    rank = min(args.rank, hidden)
    settings = dict(
        model_dim=hidden, probe_rank=rank, seed=0, epochs=args.epochs, patience=args.epochs
    )
    results: dict[str, dict] = {}

    def alone(chosen):
        def go():
            results[f"alone {len(chosen)}"] = {
                (k, kind): train_probe(
                    kind,
                    tr.tf_dataset(tr_store, k, kind, shuffle=True, seed=0),
                    dv.tf_dataset(dv_store, k, kind),
                    **settings,
                )
                for k in chosen
                for kind in KINDS
            }

        return go

    def jointly(chosen, source="layer_batches", group=True):
        def go():
            results[f"joint {len(chosen)} {source} {group}"] = train_probes(
                KINDS,
                chosen,
                getattr(tr, source)(
                    tr_store, chosen, KINDS, shuffle=True, seed=0, group_by_length=group
                ),
                getattr(dv, source)(dv_store, chosen, KINDS),
                **settings,
            )

        return go

    def data_only(chosen, source="layer_batches"):
        return lambda: [None for _ in getattr(tr, source)(tr_store, chosen, KINDS)]

    k = len(layers)
    methods = {
        "1 layer alone (train_probe x 2 kinds)": alone(one),
        "1 layer jointly (train_probes)": jointly(one),
        f"{k} layers jointly (train_probes)": jointly(layers),
        f"{k} layers one by one (train_probe x {2 * k})": alone(layers),
        f"{k} layers jointly, tf.data input (tf_layers_dataset)": jointly(
            layers, "tf_layers_dataset"
        ),
        f"{k} layers jointly, random batches (group_by_length=False)": jointly(layers, group=False),
    }
    print(
        f"matmul rate now: {matmul_gflops():.0f} GFLOP/s; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (other processes share the cores)"
    )
    steal0 = cpu_times()
    secs = timed_rounds(methods, args.rounds)
    data = timed_rounds(
        {
            "1 epoch of train batches, 1 layer (tf_dataset, distance)": lambda: [
                None for _ in tr.tf_dataset(tr_store, one[0], "distance")
            ],
            "1 epoch of train batches, 1 layer, both labels (layer_batches)": data_only(one),
            f"1 epoch of train batches, {k} layers, both labels (layer_batches)": data_only(layers),
            f"1 epoch of train batches, {k} layers, both labels (tf_layers_dataset)": data_only(
                layers, "tf_layers_dataset"
            ),
        },
        args.rounds,
    )
    steal = steal_since(steal0)
    steps = args.epochs * (-(-len(tr) // 20) + -(-len(dv) // 20))
    names = list(methods)
    print(
        f"\n{args.epochs} epochs (no early stopping), batch 20, rank {rank}, both kinds; "
        f"median of {args.rounds} interleaved round(s); CPU steal {steal:.1%}"
    )
    print(
        table(
            [{"run": n, "seconds": s, "ms per batch": 1e3 * s / steps} for n, s in secs.items()],
            ["run", "seconds", "ms per batch"],
        )
    )
    print(
        table([{"data only": n, "seconds": s} for n, s in data.items()], ["data only", "seconds"])
    )
    print(
        f"time({k} jointly) / time(1 alone)     = {secs[names[2]] / secs[names[0]]:.2f}  "
        "(target: at most ~2)"
    )
    print(f"time({k} one by one) / time({k} jointly) = {secs[names[3]] / secs[names[2]]:.2f}")
    print(f"time(1 jointly) / time(1 alone)     = {secs[names[1]] / secs[names[0]]:.2f}")
    print(
        f"time({k} jointly, tf.data input) / time(1 alone) = {secs[names[4]] / secs[names[0]]:.2f}"
    )
    print(
        f"time({k} jointly, random batches) / time({k} jointly, grouped by length) = "
        f"{secs[names[5]] / secs[names[2]]:.2f}"
    )
    joint, single = results[f"joint {k} layer_batches True"], results[f"alone {k}"]
    dw = max(
        float(np.max(np.abs(joint[key].probe.proj.numpy() - single[key].probe.proj.numpy())))
        for key in single
    )
    rel = {key: abs(joint[key].dev_loss / single[key].dev_loss - 1) for key in single}
    worst = max(rel, key=rel.get)
    # the noise floor: the same probe by train_probe again, its input moved by ~1 float32 ulp
    again = train_probe(
        worst[1],
        tr.tf_dataset(Nudged(tr_store), worst[0], worst[1], shuffle=True, seed=0),
        dv.tf_dataset(dv_store, worst[0], worst[1]),
        **settings,
    )
    floor = abs(again.dev_loss / single[worst].dev_loss - 1)
    print(
        f"joint vs one by one, {len(single)} probes: max |weight difference| {dw:.1e}, "
        f"max relative dev-loss difference {rel[worst]:.1e} ({worst[1]} layer {worst[0]}); "
        f"train_probe vs itself on features x (1 + 2^-22), same probe: {floor:.1e}"
    )


class Nudged:
    """A feature store whose vectors are multiplied by ``1 + 2^-22`` (1-2 float32 ulps)."""

    def __init__(self, store):
        self.store, self._layers = store, {}
        self.lengths, self.offsets, self.hidden_size = (
            store.lengths,
            store.offsets,
            store.hidden_size,
        )

    def layer(self, k: int) -> np.ndarray:
        if k not in self._layers:
            self._layers[k] = np.asarray(self.store.layer(k)) * np.float32(1 + 2**-22)
        return self._layers[k]


if __name__ == "__main__":
    main()
