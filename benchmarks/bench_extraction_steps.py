"""The steps of one extraction batch, timed apart: the compiled call, its host copies, the checks.

On the same planned batches of EWT dev sentences (MiniLM, or bert-base shapes), each step of
the old and the new way alternate batch by batch (noise hits both alike), summed over the
corpus and the rounds:

* the compiled call: layers stacked inside it into one ``(K, B, T, H)`` tensor (before) or
  returned one ``(B, T, H)`` array per layer (now); the same for the word pooling (one einsum
  over the stacked layers before, one matmul per layer now);
* the host copies into one ``(K, n, H)`` array per text (``np.ascontiguousarray`` of a slice of
  the stacked block before; one copy per layer into a new array now);
* the NaN/inf check over the outputs.

    .venv/bin/python benchmarks/bench_extraction_steps.py [--n 400] [--rounds 3] [--bert-base]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import ewt_sentences, flops_per_token, matmul_gflops, table  # noqa: E402


def stacked_forward(ex):
    """The extractor's compiled call as it was: the selected layers stacked in the graph."""
    import tensorflow as tf

    def forward(batch):
        out = ex.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            output_hidden_states=True,
            training=False,
        )
        hs = tf.cast(tf.stack([out.hidden_states[k] for k in ex.layers], axis=0), tf.float32)
        if not ex.words:
            return hs
        onehot = tf.one_hot(batch["word_index"], depth=tf.shape(batch["word_mask"])[1])
        counts = tf.reduce_sum(onehot, axis=1)
        summed = tf.einsum("btw,kbth->kbwh", onehot, hs)
        return summed / tf.maximum(counts, 1.0)[None, :, :, None]

    return tf.function(forward, input_signature=ex._fn.input_signature)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=400, help="EWT dev sentences")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bert-base", action="store_true", help="random bert-base-size weights")
    args = p.parse_args()

    from bench_extraction import random_bert_base

    from bert_repro.features import _gather_rows, extraction_plan, first_non_finite, get_extractor
    from bert_repro.models import load_bert
    from bert_repro.pipeline import encode_corpus, iter_padded

    model, tok = random_bert_base() if args.bert_base else load_bert()
    sentences = ewt_sentences("dev", args.n)
    rows = []
    peak = None
    for words in (False, True):
        corpus = encode_corpus(
            tok, sentences if words else [" ".join(s) for s in sentences], words=words
        )
        plan = extraction_plan(corpus.lengths, model.config, max_length=512)
        batches = list(iter_padded(corpus.items, plan))
        feeds = [{k: v for k, v in b.items() if k != "index"} for b in batches]
        new = get_extractor(model, words=words)
        old = stacked_forward(new)
        old(feeds[0]).numpy(), new.run_layers(batches[0])  # traces
        t = {k: 0.0 for k in ("call old", "call new", "copy old", "copy new", "check")}
        for r in range(args.rounds):
            for feed, batch in zip(feeds, batches, strict=True):
                order = ("old", "new") if r % 2 == 0 else ("new", "old")
                for way in order:
                    start = time.perf_counter()
                    if way == "old":
                        block = old(feed).numpy()
                    else:
                        layers = [o.numpy() for o in new._fn(feed)]
                    t[f"call {way}"] += time.perf_counter() - start
                mask = batch["word_mask" if words else "attention_mask"]
                n = mask.sum(axis=1)
                start = time.perf_counter()
                [np.ascontiguousarray(block[:, i, : n[i]]) for i in range(len(n))]
                t["copy old"] += time.perf_counter() - start
                start = time.perf_counter()
                [_gather_rows(layers, i, int(n[i])) for i in range(len(n))]
                t["copy new"] += time.perf_counter() - start
                start = time.perf_counter()
                first_non_finite(layers, mask)
                t["check"] += time.perf_counter() - start
        per = len(batches) * args.rounds
        total_old = t["call old"] + t["copy old"] + t["check"]
        total_new = t["call new"] + t["copy new"] + t["check"]
        tokens = int(corpus.lengths.sum()) * args.rounds
        fpt = flops_per_token(model.config, corpus.lengths.mean())
        peak = peak or matmul_gflops()
        for way, total in (("before (stacked)", total_old), ("now (per layer)", total_new)):
            w = way.split()[0] == "now"
            rows.append(
                {
                    "input": "words" if words else "texts",
                    "way": way,
                    "call ms/batch": 1000 * t["call new" if w else "call old"] / per,
                    "copy ms/batch": 1000 * t["copy new" if w else "copy old"] / per,
                    "check ms/batch": 1000 * t["check"] / per,
                    "x before": total_old / total,
                    "% of matmul peak": 100 * tokens / total * fpt / 1e9 / peak,
                }
            )
    cfg = model.config
    print(
        f"model: {cfg.num_hidden_layers} layers x {cfg.hidden_size}; {len(sentences)} EWT dev "
        f"sentences; {len(batches)} batches; {args.rounds} rounds alternating old and new "
        f"batch by batch; matmul peak {peak:.0f} GFLOP/s (call + copy + check, no tf.data)"
    )
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
