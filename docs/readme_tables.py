"""Print the README's reproduction tables (Markdown) from a run's ``results.json``.

    python docs/readme_tables.py runs/reproduce/results.json

Every number in the README's "The main job" tables comes from this script's output on the run
the README names, so a table can be checked against its run.
"""

from __future__ import annotations

import json
import sys

NAMES = {"agnews": "AG News", "squad": "SQuAD", "parse": "parser"}


def num(x: float | None, digits: int = 3) -> str:
    """``.123`` style (no leading zero) for scores in [0, 1]; ``-`` for a missing value."""
    if x is None:
        return "-"
    if abs(x) >= 1.5:
        return f"{x:.1f}"
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("0.") else text


def model_name(name: str, base: str) -> str:
    return f"{base} (base)" if name == base else NAMES.get(name, name)


def ordered(names, base: str) -> list[str]:
    """The base first, then the fine-tuned models in the README's order."""
    rank = {name: i for i, name in enumerate([base, *NAMES])}
    return sorted(dict.fromkeys(names), key=lambda n: rank.get(n, len(rank)))


def row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def finetune_table(d: dict) -> list[str]:
    parse = d["finetune"].get("parse")
    out = [f"AG News accuracy {num(d['finetune']['agnews']['metrics']['accuracy'])}"]
    squad = d["finetune"]["squad"]["metrics"]
    out.append(f"SQuAD EM {squad['exact_match']:.1f} / F1 {squad['f1']:.1f}")
    if parse:
        out += [
            "",
            "| split | UAS (all words, CoNLL 2018) | LAS | UAS (no punctuation, PTB) | LAS |",
            "|---|---|---|---|---|",
        ]
        for split, m in (("dev", parse["metrics"]), ("test", parse["test_metrics"])):
            if m:
                label = f"{split} ({m['n_sentences']:,} sentences, {m['n_words']:,} words)"
                keys = ("uas", "las", "uas_no_punct", "las_no_punct")
                out.append(row([label, *(num(m[k]) for k in keys)]))
    return out


def similarity_table(d: dict) -> list[str]:
    sources = d["compare"]
    n_layers = len(next(iter(next(iter(sources.values()))["models"].values()))["cka"])
    out = [
        row(["texts, model", "measure", *range(n_layers)]),
        "|" + "---|" * (n_layers + 2),
    ]
    labels = {"ewt": "EWT", "agnews": "AG News"}
    for measure, title in (("cosine", "cosine"), ("cka", "linear CKA")):
        for source, result in sources.items():
            for name, values in result["models"].items():
                what = f"{labels.get(source, source)}, {NAMES.get(name, name)}"
                out.append(row([what, title, *(num(v) for v in values[measure])]))
    return out


def probe_table(d: dict) -> list[str]:
    rows = d["probes"]
    base = rows[0]["model"]
    layers = sorted({r["layer"] for r in rows})
    out = [row(["model", "probe", *layers]), "|" + "---|" * (len(layers) + 2)]
    for metric, kind in (("uuas", "distance"), ("nspr", "depth")):
        for model in ordered((r["model"] for r in rows), base):
            by_layer = {
                r["layer"]: r[metric] for r in rows if r["model"] == model and r["kind"] == kind
            }
            cells = [num(by_layer.get(k)) for k in layers]
            out.append(
                row(
                    [
                        model_name(model, base),
                        metric.upper() if metric == "uuas" else "NSpr",
                        *cells,
                    ]
                )
            )
    return out


def edge_table(d: dict) -> list[str]:
    rows = d["edge_probes"]
    base = rows[0]["model"]
    layers = sorted({r["layer"] for r in rows if r["mix_upto"] is None})
    out = [row(["model", "task", *layers, "mix", "E[layer]"]), "|" + "---|" * (len(layers) + 4)]
    for task, title in (("pos", "POS"), ("deprel", "deprel")):
        for model in ordered((r["model"] for r in rows), base):
            mine = [r for r in rows if r["model"] == model and r["task"] == task]
            by_layer = {r["layer"]: r["f1"] for r in mine if r["mix_upto"] is None}
            mix = [r for r in mine if r["mix_upto"] is not None]
            mix_f1 = mix[-1]["f1"] if mix else None
            expected = f"{mix[-1]['expected_layer']:.2f}" if mix else "-"
            cells = [num(by_layer.get(k)) for k in layers]
            out.append(row([model_name(model, base), title, *cells, num(mix_f1), expected]))
    return out


def ablation_table(d: dict) -> list[str]:
    rows = d["ablations"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    columns: list[tuple] = [("restore", "bottom", 0)]
    for r in rows:
        key = (r["mode"], r.get("direction"), r["k"])
        if r["k"] and key not in columns:
            columns.append(key)
    head = ["fine-tuned" if k == 0 else f"{m} {dr} {k}" for m, dr, k in columns]
    out = [row(["model (metric)", *head]), "|" + "---|" * (len(columns) + 1)]
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        for metric in dict.fromkeys(r["metric"] for r in mine):
            if metric in ("n_examples", "n_questions", "n_words", "n_sentences"):
                continue
            value = {
                (r["mode"], r.get("direction"), r["k"]): r["value"]
                for r in mine
                if r["metric"] == metric
            }
            if model == "parse" and metric not in ("uas", "las"):
                continue
            if model == "squad" and metric != "f1":
                continue
            cells = [num(value.get(c)) for c in columns]
            out.append(row([f"{NAMES.get(model, model)} ({metric})", *cells]))
    return out


def main(path: str) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        sys.exit(
            f"cannot read {path}: {err} (give the results.json of a `bert-repro reproduce` run)"
        )
    missing = [
        k
        for k in ("finetune", "compare", "probes", "edge_probes", "ablations", "claims")
        if k not in d
    ]
    if missing:
        sys.exit(
            f"{path} is not a `bert-repro reproduce` results.json: no {', '.join(missing)} "
            "(a run that has not finished, or another command's output?)"
        )
    sections = {
        "fine-tuning": finetune_table,
        "similarity to the base": similarity_table,
        "structural probes (test UUAS, NSpr)": probe_table,
        "edge probes (test micro F1; E[layer] of the mix)": edge_table,
        "layer ablations": ablation_table,
    }
    for title, table in sections.items():
        print(f"\n## {title}\n")
        print("\n".join(table(d)))
    print("\n## claims\n")
    for c in d["claims"]:
        print(f"- {c['id']}: {c['verdict']} -- {c['reason']}")
    print("\n## step seconds\n")
    print(json.dumps(d["durations_seconds"]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/readme_tables.py RUN/results.json")
    main(sys.argv[1])
