"""Extraction throughput with 1 worker and with 2 (MultiWorkerMirroredStrategy on 127.0.0.1).

Side by side in one run: the same word-feature extraction (MiniLM by default, all layers,
the first N EWT dev sentences) in one process (``--distribute none``), then in two worker
processes started with a ``TF_CONFIG`` each (``--distribute multi-worker``: each global batch
split by rows, the rows all-gathered back to every worker). Each process loads the model and
warms up (traces) first; only the extraction is timed (on the chief), best of ``--rounds``;
the two set-ups alternate ``--repeats`` times and the best of each is compared. The scaling
efficiency is ``(words/s with 2 workers) / (2 x words/s with 1)``.

    .venv/bin/python benchmarks/bench_distribute.py [--n 1000] [--rounds 2] [--repeats 2]

On one machine the two workers share its cores (and memory bandwidth): on a 2-core machine a
single process already uses both cores for its matmuls, so two workers can at best match it;
what remains is the overhead (collective gathers, the twice-run input pipeline).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_times, steal_since, table  # noqa: E402

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import tensorflow as tf
threads = int(sys.argv[3])
if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
from bert_repro.distribute import is_chief, make_strategy
strategy = make_strategy(sys.argv[1])
from _common import ewt_sentences
from bert_repro.features import word_features
from bert_repro.models import load_bert
model, tok = load_bert(strategy=strategy)
sents = ewt_sentences("dev", int(sys.argv[2]))
opts = dict(strategy=strategy, progress=False)
word_features(model, tok, sents[:64], **opts)  # trace and warm up
best = None
for _ in range(int(sys.argv[4])):
    t = time.perf_counter()
    feats = word_features(model, tok, sents, **opts)
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
words = sum(f.shape[1] for f in feats)
if is_chief(strategy):
    print("RESULT", json.dumps({{"sentences": len(sents), "words": words, "seconds": best,
        "replicas": 1 if strategy is None else strategy.num_replicas_in_sync}}), flush=True)
"""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run(kind: str, workers: int, args, child: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-c", child, kind, str(args.n), str(args.threads), str(args.rounds)]
    ports = _free_ports(workers)
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for i in range(workers):
                if kind == "multi-worker":
                    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
                    task = {"type": "worker", "index": i}
                    env = {**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}
                log = open(Path(tmp) / f"w{i}.log", "w+")  # noqa: SIM115 (closed below)
                procs.append((subprocess.Popen(argv, env=env, stdout=log, stderr=log), log))
            for proc, _ in procs:
                proc.wait(timeout=3600)
        finally:
            for proc, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        texts = []
        for proc, log in procs:
            log.seek(0)
            texts.append(log.read())
            log.close()
            if proc.returncode:
                sys.exit(texts[-1][-3000:])
    line = next(x for t in texts for x in t.splitlines() if x.startswith("RESULT"))
    return json.loads(line.split(" ", 1)[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1000, help="EWT dev sentences (1000)")
    p.add_argument("--rounds", type=int, default=2, help="timed extractions, best kept (2)")
    p.add_argument(
        "--threads", type=int, default=0, help="TF threads per process (0: TF's default)"
    )
    p.add_argument("--repeats", type=int, default=2, help="interleaved repeats (2)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    child = CHILD.format(bench=str(Path(__file__).parent))
    runs = []
    for rep in range(args.repeats):  # interleaved: a change in the host's load hits both
        for kind, workers in (("none", 1), ("multi-worker", 2)):
            t, cpu = time.perf_counter(), cpu_times()
            row = {"repeat": rep, "distribute": kind, "workers": workers}
            row.update(_run(kind, workers, args, child))
            row["process_seconds"] = time.perf_counter() - t
            row["words/s"] = row["words"] / row["seconds"]
            row["load"] = os.getloadavg()[0]
            row["steal"] = steal_since(cpu)
            runs.append(row)
            print(table(runs[-1:], list(row)), flush=True)
    rows = [
        max((r for r in runs if r["distribute"] == kind), key=lambda r: r["words/s"])
        for kind in ("none", "multi-worker")
    ]
    one = rows[0]["words/s"]
    for r in rows:
        r["speed-up"] = r["words/s"] / one
        r["efficiency"] = r["speed-up"] / r["workers"]
    cols = ["distribute", "workers", "replicas", "sentences", "words", "seconds", "words/s"]
    print("\nbest of each:")
    print(table(rows, [*cols, "speed-up", "efficiency", "load", "process_seconds"]))
    print(
        f"cores: {os.cpu_count()}; TF threads per process: {args.threads or 'default'}; "
        "load = 1-minute load average after the run (other processes on the host)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
