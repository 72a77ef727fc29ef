"""Extraction speed: the naive per-sentence loop vs a plain batched loop vs bert_repro.

Same EWT dev sentences, same model, one process, methods interleaved round by round; prints
wordpiece tokens/s, the ratios, and the share of this machine's matmul rate achieved.

    .venv/bin/python benchmarks/bench_extraction.py [--n 400] [--rounds 3] [--bert-base]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _common import ewt_sentences, flops_per_token, matmul_gflops, table, timed_rounds  # noqa: E402


def random_bert_base():
    """bert-base shapes (12 x 768, vocab 30522) with random weights and the MiniLM tokenizer."""
    from transformers import BertConfig, TFBertModel

    from bert_repro.models import load_bert

    _, tok = load_bert()
    model = TFBertModel(BertConfig(output_hidden_states=True))
    model(model.dummy_inputs)
    return model, tok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=400, help="EWT dev sentences")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--naive-n", type=int, default=None, help="sentences for the naive loop")
    p.add_argument("--bert-base", action="store_true", help="random bert-base-size weights")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()

    from bert_repro.features import hidden_states
    from bert_repro.models import load_bert

    model, tok = random_bert_base() if args.bert_base else load_bert()
    texts = [" ".join(s) for s in ewt_sentences("dev", args.n)]
    naive_texts = texts[: args.naive_n or len(texts)]
    lengths = np.array([len(x) for x in tok(texts)["input_ids"]])
    naive_tokens = int(lengths[: len(naive_texts)].sum())
    tokens = int(lengths.sum())

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

    def ours(jit: bool, bs: int):
        return lambda: hidden_states(
            model, tok, texts, batch_size=bs, jit_compile=jit, progress=False
        )

    methods = {
        "naive per-sentence loop": naive,
        "plain batched loop (sorted, 64)": plain_batched,
        "hidden_states (bs 32)": ours(False, 32),
        "hidden_states (bs 64)": ours(False, 64),
        "hidden_states (bs 32, XLA)": ours(True, 32),
    }
    for fn in list(methods.values())[1:]:
        fn()  # warm-up: traces, compilations, caches
    secs = timed_rounds(methods, args.rounds)
    peak = matmul_gflops()
    mean_len = float(lengths.mean())
    fpt = flops_per_token(model.config, mean_len)
    rows = []
    for name, s in secs.items():
        n = naive_tokens if name.startswith("naive") else tokens
        rate = n / s
        rows.append(
            {
                "method": name,
                "tokens/s": rate,
                "x naive": rate / (naive_tokens / secs["naive per-sentence loop"]),
                "x plain batched": rate / (tokens / secs["plain batched loop (sorted, 64)"]),
                "GFLOP/s": rate * fpt / 1e9,
                "% of matmul peak": 100 * rate * fpt / 1e9 / peak,
            }
        )
    cfg = model.config
    print(
        f"model: {cfg.num_hidden_layers} layers x {cfg.hidden_size}, "
        f"{fpt / 1e9:.4f} GFLOP/token at mean length {mean_len:.1f}; "
        f"{len(texts)} EWT dev sentences, {tokens} wordpieces; matmul peak {peak:.0f} GFLOP/s"
    )
    print(table(rows, list(rows[0])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "peak_gflops": peak, "tokens": tokens}, f, indent=2)


if __name__ == "__main__":
    main()
