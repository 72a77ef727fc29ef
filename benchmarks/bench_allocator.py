"""What TensorFlow's malloc patch costs, and what ``bert_repro.allocator`` gets back.

TensorFlow 2.21's ``from_generator`` kernel sets glibc's ``M_TRIM_THRESHOLD`` to 128 KiB the
first time it runs in a process, which freezes the mmap threshold at 128 KiB: every activation
buffer is then mmap-ed, page-faulted and unmapped at each step. ``keep_freed_memory`` sets the
thresholds back to the ceiling glibc's own dynamic rule reaches (32 MiB / 64 MiB).

Each state runs in its own process (``BERT_REPRO_MALLOC=tensorflow`` keeps TensorFlow's patch),
the states interleaved round by round: a MiniLM fine-tuning step (``fit`` on length-grouped AG News batches) and a forward
pass over a batch of the same inputs (what extraction runs). Prints seconds per step, the
process's system CPU time per step, and the ratio.

    .venv/bin/python benchmarks/bench_allocator.py [--steps 6] [--rounds 2] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table  # noqa: E402
from bench_finetune import DATA, build  # noqa: E402

STATES = {"TensorFlow's patch": "tensorflow", "bert_repro.allocator": ""}


def child(steps: int, batch: int, n: int) -> dict:
    """Seconds and system CPU seconds per step, in this process's malloc state."""
    import tensorflow as tf

    from bert_repro.allocator import keep_freed_memory
    from bert_repro.finetune.agnews import read_agnews_csv
    from bert_repro.finetune.config import paper_defaults
    from bert_repro.finetune.dataset import pad_inputs, training_dataset
    from bert_repro.finetune.tasks import get_task
    from bert_repro.models import load_bert

    keep_freed_memory()  # TensorFlow's patch runs; BERT_REPRO_MALLOC=tensorflow keeps it
    encoder, tok = load_bert()
    config = paper_defaults("agnews", batch_size=batch)
    examples = read_agnews_csv(DATA / "ag-news" / "test.csv")[:n]
    encoded = get_task("agnews").encode(tok, examples, config)
    model = build("agnews", encoder, tok, config)
    it = iter(training_dataset(encoded.features, encoded.labels, batch, seed=0))
    x = pad_inputs(encoded.features, list(range(batch)))
    forward = tf.function(lambda x: model.encoder(x, output_hidden_states=True).hidden_states)
    model.fit(it, steps_per_epoch=2, epochs=1, verbose=0)  # traces
    forward(x)
    jobs = {
        "fine-tuning step": (
            lambda: model.fit(it, steps_per_epoch=steps, epochs=1, verbose=0),
            steps,
        ),
        "forward (extraction)": (lambda: [forward(x) for _ in range(4 * steps)], 4 * steps),
    }
    out = {}
    for job, (fn, k) in jobs.items():
        t, c = time.perf_counter(), os.times()
        fn()
        out[job] = ((time.perf_counter() - t) / k, (os.times().system - c.system) / k)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6, help="fine-tuning steps per run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--n", type=int, default=1024, help="AG News rows")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.steps, args.batch, args.n)))
        return

    runs: dict = {state: [] for state in STATES}
    cmd = [sys.executable, __file__, "--child", "--steps", str(args.steps)]
    cmd += ["--batch", str(args.batch), "--n", str(args.n)]
    for _ in range(args.rounds):
        for state, value in STATES.items():
            env = {**os.environ, "BERT_REPRO_MALLOC": value}
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(proc.stderr[-3000:])
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
            runs[state].append(json.loads(line[len("RESULT ") :]))
    rows = []
    for job in runs[next(iter(STATES))][0]:
        ref = None
        for state in STATES:
            s = statistics.median(r[job][0] for r in runs[state])
            ref = ref or s
            rows.append(
                {
                    "job": job,
                    "malloc": state,
                    "s/step": s,
                    "system s/step": statistics.median(r[job][1] for r in runs[state]),
                    "speed-up": ref / s,
                }
            )
    print(
        f"MiniLM, batch {args.batch}, AG News; one process per state and round, median of "
        f"{args.rounds} interleaved rounds; load average at the end {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
