"""Extraction speed: the naive per-sentence loop vs a plain batched loop vs bert_repro.

Same EWT dev sentences, same model, one process, methods interleaved round by round (median
of the rounds); prints wordpiece tokens/s, the ratios, the padding computed, the first
(cold) call's time, and the share of this machine's float32 matmul rate (measured in the same
run) that the model's FLOPs (counted from its config) reach.

    .venv/bin/python benchmarks/bench_extraction.py [--n 400] [--rounds 3] [--bert-base]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _common import (  # noqa: E402
    cpu_times,
    ewt_sentences,
    flops_per_token,
    matmul_gflops,
    steal_since,
    table,
    timed_rounds,
)


def random_bert_base():
    """bert-base shapes (12 x 768, vocab 30522) with random weights and the MiniLM tokenizer."""
    from transformers import BertConfig, TFBertModel

    from bert_repro.models import load_bert

    _, tok = load_bert()
    model = TFBertModel(BertConfig(output_hidden_states=True))
    model(model.dummy_inputs)
    return model, tok


def model_ceiling(model_source, bert_base: bool, peak: float) -> list[dict]:
    """The model alone on one fixed batch of random ids, called again and again (best of 5):
    the rate no pipeline can beat, for a few batch shapes, under XLA, and in the mixed
    precisions (which this CPU can only emulate or half-use)."""
    import tensorflow as tf

    from bert_repro.features import ExtractionSettings, get_extractor

    rows = []
    shapes = [(64, 24), (128, 16), (512, 8), (16, 128)]
    settings = [("float32", False, shapes), ("float32", True, shapes[:1])]
    if not bert_base:
        settings += [("mixed_bfloat16", False, shapes[:1]), ("mixed_float16", False, shapes[:1])]
    for precision, jit, shape_list in settings:
        model = model_source(precision)
        ex = get_extractor(model, ExtractionSettings(jit_compile=jit))
        for b, t in shape_list:
            fpt = flops_per_token(model.config, t)
            ids = np.random.default_rng(0).integers(1000, 2000, (b, t)).astype(np.int32)
            feed = {
                "input_ids": tf.constant(ids),
                "attention_mask": tf.ones((b, t), tf.int32),
                "token_type_ids": tf.zeros((b, t), tf.int32),
                "index": np.arange(b),
            }
            ex.run_layers(feed)
            best = min(_timed(lambda f=feed, ex=ex: ex.run_layers(f)) for _ in range(5))
            rate = b * t / best
            rows.append(
                {
                    "precision": precision,
                    "XLA": "yes" if jit else "",
                    "batch (B, T)": f"({b}, {t})",
                    "tokens/s": rate,
                    "% of matmul peak": 100 * rate * fpt / 1e9 / peak,
                }
            )
    return rows


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def planning(tok) -> list[dict]:
    """Tokenising and planning all of EWT dev and train: time, and the padding each plan
    computes (fixed batches of 64 padded to a multiple of 8, as before; the token-budget plan;
    the XLA buckets)."""
    from bert_repro.batching import (
        Batch,
        bucket_widths,
        bucketed_plan,
        plan_batches,
        plan_stats,
        round_up,
        token_budget_plan,
    )
    from bert_repro.pipeline import encode_words

    rows = []
    for split in ("dev", "train"):
        sentences = ewt_sentences(split)
        t = time.perf_counter()
        lengths = np.array([len(e) for e in encode_words(tok, sentences)])
        tokenise = time.perf_counter() - t
        fixed = [Batch(ix, int(round_up(lengths[ix].max(), 8))) for ix in plan_batches(lengths, 64)]
        t = time.perf_counter()
        ours = token_budget_plan(lengths, attention_width=2 * 384 + 1536)
        plan_ms = 1000 * (time.perf_counter() - t)
        buckets = bucketed_plan(lengths, bucket_widths(lengths, max_length=512))
        rows.append(
            {
                "EWT split": f"{split} ({len(sentences)} sentences)",
                "tokenise s": tokenise,
                "plan ms": plan_ms,
                "padding: fixed 64": f"{100 * plan_stats(lengths, fixed)['padding_share']:.1f}%",
                "token budget": f"{100 * plan_stats(lengths, ours)['padding_share']:.2f}%",
                "XLA buckets": f"{100 * plan_stats(lengths, buckets)['padding_share']:.1f}%",
                "XLA shapes": plan_stats(lengths, buckets)["shapes"],
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=400, help="EWT dev sentences")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--naive-n", type=int, default=None, help="sentences for the naive loop")
    p.add_argument("--bert-base", action="store_true", help="random bert-base-size weights")
    p.add_argument("--no-xla", action="store_true", help="skip the XLA variant")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()

    from bert_repro.batching import plan_stats
    from bert_repro.features import extraction_plan, hidden_states, word_features
    from bert_repro.models import load_bert
    from bert_repro.pipeline import encode_texts, encode_words

    model, tok = random_bert_base() if args.bert_base else load_bert()
    sentences = ewt_sentences("dev", args.n)
    texts = [" ".join(s) for s in sentences]
    naive_texts = texts[: args.naive_n or len(texts)]
    lengths = np.array([len(e) for e in encode_texts(tok, texts)])
    word_lengths = np.array([len(e) for e in encode_words(tok, sentences)])
    tokens = {"text": int(lengths.sum()), "words": int(word_lengths.sum())}
    naive_tokens = int(lengths[: len(naive_texts)].sum())

    def naive():
        for t in naive_texts:  # the seed notebooks' way: one eager call per sentence
            out = model(**tok([t], return_tensors="tf"), output_hidden_states=True)
            [h.numpy() for h in out.hidden_states]

    def plain_batched():
        order = np.argsort(-lengths, kind="stable")
        for i in range(0, len(order), 64):
            batch = [texts[j] for j in order[i : i + 64]]
            enc = tok(batch, padding=True, return_tensors="tf")
            out = model(**enc, output_hidden_states=True)
            [h.numpy() for h in out.hidden_states]

    def plain_padding() -> float:
        order = np.argsort(-lengths, kind="stable")
        padded = sum(lengths[order[i]] * len(order[i : i + 64]) for i in range(0, len(order), 64))
        return 1 - lengths.sum() / padded

    methods = {
        "naive per-sentence loop": (naive, "text", None),
        "plain batched loop (sorted, 64, eager)": (plain_batched, "text", plain_padding()),
    }
    cfg = model.config
    for name, fn, kind, jit in [
        ("hidden_states", hidden_states, "text", False),
        ("word_features", word_features, "words", False),
        ("hidden_states, XLA", hidden_states, "text", True),
    ]:
        if jit and args.no_xla:
            continue
        data = texts if kind == "text" else sentences
        lens = lengths if kind == "text" else word_lengths
        plan = extraction_plan(lens, cfg, fixed_shapes=jit, max_length=512)
        stats = plan_stats(lens, plan)
        methods[name] = (
            lambda fn=fn, data=data, jit=jit: fn(model, tok, data, jit_compile=jit, progress=False),
            kind,
            stats["padding_share"],
        )
    first = {}
    for name, (fn, _, _) in list(methods.items())[1:]:
        t = time.perf_counter()
        fn()  # first call: traces, XLA compilations
        first[name] = time.perf_counter() - t
    start = cpu_times()
    secs = timed_rounds({name: m[0] for name, m in methods.items()}, args.rounds)
    steal = steal_since(start)
    peak = matmul_gflops()
    mean_len = float(lengths.mean())
    fpt = flops_per_token(cfg, mean_len)
    naive_rate = naive_tokens / secs["naive per-sentence loop"]
    plain_rate = tokens["text"] / secs["plain batched loop (sorted, 64, eager)"]
    rows = []
    for name, (_, kind, padding) in methods.items():
        n = naive_tokens if name.startswith("naive") else tokens[kind]
        rate = n / secs[name]
        rows.append(
            {
                "method": name,
                "tokens/s": rate,
                "x naive": rate / naive_rate,
                "x plain batched": rate / plain_rate,
                "GFLOP/s": rate * fpt / 1e9,
                "% of matmul peak": 100 * rate * fpt / 1e9 / peak,
                "padding %": None if padding is None else 100 * padding,
                "first call s": first.get(name),
            }
        )
    print(
        f"model: {cfg.num_hidden_layers} layers x {cfg.hidden_size}, "
        f"{fpt / 1e9:.4f} GFLOP/token at mean length {mean_len:.1f}; "
        f"{len(texts)} EWT dev sentences, {tokens['text']} wordpieces; "
        f"matmul peak {peak:.0f} GFLOP/s; median of {args.rounds} rounds; "
        f"CPU steal (host contention) during the rounds: {100 * steal:.1f}%"
    )
    print(table(rows, list(rows[0])))

    def source(precision):
        if args.bert_base:
            return model
        return load_bert(precision=precision)[0]

    ceiling = model_ceiling(source, args.bert_base, peak)
    print("\nthe model alone on one fixed batch of random ids, best of 5 calls")
    print(table(ceiling, list(ceiling[0])))
    plans = planning(tok)
    print("\ntokenising and planning EWT (MiniLM wordpieces)")
    print(table(plans, list(plans[0])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"rows": rows, "ceiling": ceiling, "peak_gflops": peak, "tokens": tokens},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
