"""Fine-tuning speed: random batches padded to their longest vs batches grouped by length.

MiniLM (the offline default) fine-tuned with the package's own pieces (task head, BertTaskModel,
BERT's AdamW, ``training_dataset``, Keras ``fit``) on AG News rows from ../shared/data, and on
SQuAD sample windows; the same compiled model runs the same number of steps on each stream,
interleaved round by round. ``window_batches=1`` is plain random batches (what
``padded_batch`` over a shuffled stream gave); the default groups lengths within windows of 50
batches (``bert_repro.batching.length_grouped_batches``). Prints real wordpieces per second,
the padding computed, the training FLOPs per step (3x the forward FLOPs of the padded batch:
forward, and a backward pass twice its cost) and their share of this machine's float32 matmul
rate, measured in the same run.

    .venv/bin/python benchmarks/bench_finetune.py [--n 2048] [--steps 6] [--rounds 3]
        [--squad-steps 2] [--squad-batch 8]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    REPO,
    cpu_times,
    flops_per_token,
    matmul_gflops,
    steal_since,
    table,
)

DATA = REPO.parent / "shared" / "data"
STREAMS = {"random batches (padded)": 1, "grouped by length": None}


def step_costs(lengths, batch_size, steps, seed, window, config) -> dict:
    """Real and padded wordpieces and training FLOPs of the first ``steps`` planned batches."""
    from bert_repro.batching import DEFAULT_WINDOW_BATCHES, length_grouped_batches, round_up

    stream = length_grouped_batches(
        lengths, batch_size, seed=seed, window_batches=window or DEFAULT_WINDOW_BATCHES
    )
    real = padded = flops = 0.0
    for index in itertools.islice(stream, steps):
        t = int(round_up(lengths[index].max(), 8))
        real += float(lengths[index].sum())
        padded += float(len(index) * t)
        flops += 3 * len(index) * t * flops_per_token(config, t)
    return {"real": real, "padded": padded, "flops": flops}


def build(task_name: str, encoder, tok, config):
    from bert_repro.finetune.model import BertTaskModel
    from bert_repro.finetune.optimization import build_optimizer
    from bert_repro.finetune.tasks import get_task
    from bert_repro.finetune.trainer import dummy_inputs

    task = get_task(task_name)
    model = BertTaskModel(encoder, task.make_head(config, encoder.config))
    model(dummy_inputs(tok))
    model.compile(optimizer=build_optimizer(config, 10_000), **task.compile_args())
    return model


def measure(task_name, model, encoded, tok, config, steps, rounds, peak_holder) -> list[dict]:
    """Interleaved rounds of ``steps`` training steps on each stream; rows for the table."""
    from bert_repro.finetune.dataset import training_dataset

    lengths = encoded.features.lengths
    b = config.batch_size
    datasets = {}
    for name, window in STREAMS.items():
        extra = {} if window is None else {"window_batches": window}
        datasets[name] = training_dataset(
            encoded.features,
            encoded.labels,
            b,
            seed=config.seed,
            pad_id=tok.pad_token_id,
            **extra,
        )
    t = time.perf_counter()
    model.fit(datasets["grouped by length"], steps_per_epoch=1, epochs=1, verbose=0)
    first = time.perf_counter() - t
    times: dict[str, list[float]] = {name: [] for name in STREAMS}
    start = cpu_times()
    for _ in range(rounds):
        for name, ds in datasets.items():
            t = time.perf_counter()
            model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
            times[name].append(time.perf_counter() - t)
    steal = steal_since(start)
    peak = peak_holder.setdefault("peak", matmul_gflops())
    rows = []
    ref = None
    for name, window in STREAMS.items():
        cost = step_costs(lengths, b, steps, config.seed, window, model.encoder.config)
        secs = statistics.median(times[name])
        rate = cost["real"] / secs
        ref = ref or rate
        rows.append(
            {
                "task": task_name,
                "stream": name,
                "real tokens/s": rate,
                "min-max": f"{cost['real'] / max(times[name]):,.0f}-"
                f"{cost['real'] / min(times[name]):,.0f}",
                "x random": rate / ref,
                "padding %": 100 * (1 - cost["real"] / cost["padded"]),
                "GFLOP/step": cost["flops"] / steps / 1e9,
                "s/step": secs / steps,
                "% of matmul peak": 100 * cost["flops"] / secs / 1e9 / peak,
                "steal %": 100 * steal,
                "first step s": first if name == "grouped by length" else None,
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2048, help="AG News rows")
    p.add_argument("--steps", type=int, default=6, help="steps per stream per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=32, help="AG News batch size")
    p.add_argument("--squad-steps", type=int, default=2, help="0 skips SQuAD")
    p.add_argument("--squad-batch", type=int, default=8)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()

    from bert_repro.finetune.agnews import read_agnews_csv
    from bert_repro.finetune.config import paper_defaults
    from bert_repro.finetune.squad import read_squad_json
    from bert_repro.finetune.tasks import get_task
    from bert_repro.models import load_bert

    peak: dict = {}
    rows = []
    runs = [("agnews", args.n, args.batch, args.steps)]
    if args.squad_steps:
        runs.append(("squad", None, args.squad_batch, args.squad_steps))
    info = []
    for task, n, batch, steps in runs:
        encoder, tok = load_bert()
        config = paper_defaults(task, batch_size=batch)
        if task == "agnews":
            examples = read_agnews_csv(DATA / "ag-news" / "test.csv")[:n]
        else:
            examples = read_squad_json(DATA / "squad-sample" / "dev-v1.1-sample.json")
        encoded = get_task(task).encode(tok, examples, config)
        lengths = encoded.features.lengths
        info.append(
            f"{task}: {len(lengths)} inputs (max {config.max_seq_length}), wordpieces mean "
            f"{lengths.mean():.1f}, max {lengths.max()}; batch {batch}, {steps} steps a round"
        )
        model = build(task, encoder, tok, config)
        rows += measure(task, model, encoded, tok, config, steps, args.rounds, peak)
    print(
        f"MiniLM fine-tuning, median of {args.rounds} interleaved rounds (min-max over rounds); "
        f"float32 matmul peak {peak['peak']:.0f} GFLOP/s; FLOPs = 3 x forward of the padded "
        f"batch; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for line in info:
        print("  " + line)
    print(table(rows, list(rows[0])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "peak_gflops": peak["peak"], "info": info}, f, indent=2)


if __name__ == "__main__":
    main()
