"""tf.data autotuning on vs off under the extraction: the rate of each of N interleaved rounds.

The extraction pipeline (a generator of padded batches plus a fixed prefetch) turns tf.data's
autotuner off (``bert_repro.pipeline.quiet_data_options``): on this 2-core machine it slowed
some runs to about half speed. This measures it: the same plan, the same compiled model, fed
by the same dataset with autotuning on or off, round after round.

    .venv/bin/python benchmarks/bench_autotune.py [--n 400] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import ewt_sentences, table  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=400, help="EWT dev sentences")
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()

    import tensorflow as tf

    from bert_repro.features import extraction_plan, get_extractor
    from bert_repro.models import load_bert
    from bert_repro.pipeline import encode_texts, iter_padded

    model, tok = load_bert()
    items = encode_texts(tok, [" ".join(s) for s in ewt_sentences("dev", args.n)])
    plan = extraction_plan([len(e) for e in items], model.config, max_length=512)
    tokens = sum(len(e) for e in items)
    extractor = get_extractor(model)
    spec = {k: tf.TensorSpec((None, None), tf.int32) for k in ("input_ids", "attention_mask")}
    spec["token_type_ids"] = tf.TensorSpec((None, None), tf.int32)
    spec["index"] = tf.TensorSpec((None,), tf.int64)

    def run(autotune: bool) -> float:
        ds = tf.data.Dataset.from_generator(
            lambda: iter_padded(items, plan), output_signature=spec
        ).prefetch(2)
        options = tf.data.Options()
        options.autotune.enabled = autotune
        t = time.perf_counter()
        for batch in ds.with_options(options):
            extractor.run(batch)
        return tokens / (time.perf_counter() - t)

    run(True), run(False)  # warm-up
    rates: dict[str, list[float]] = {"autotune on": [], "autotune off": []}
    for _ in range(args.rounds):
        rates["autotune on"].append(run(True))
        rates["autotune off"].append(run(False))
    ref = statistics.median(rates["autotune off"])
    rows = [
        {
            "tf.data": name,
            "min tokens/s": min(v),
            "median": statistics.median(v),
            "max": max(v),
            "rounds below 75% of the 'off' median": sum(r < 0.75 * ref for r in v),
        }
        for name, v in rates.items()
    ]
    print(f"MiniLM, {len(items)} EWT dev sentences, {tokens} wordpieces, {args.rounds} rounds")
    print(table(rows, list(rows[0])))
    for name, v in rates.items():
        print(f"{name}: " + " ".join(f"{r:,.0f}" for r in v))


if __name__ == "__main__":
    main()
