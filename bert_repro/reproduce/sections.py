"""The report's sections for the paper's other half: the parser's scores, the edge probes and
the layer ablations (read back from the steps' files, rendered as HTML with their figures)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path

from ..io import save_figure
from ..outputs import SavedResults, read_results, results_path

PAPER = {
    "edge": "Tenney et al. (2019) find that BERT-base encodes part of speech low and "
    "dependency relations a little higher (expected layers about 3.4 and 5.7 of 12 by "
    "cumulative scoring); Merchant et al. (2020) find edge-probe scores barely move after "
    "fine-tuning on MNLI and SQuAD, with dependency parsing fine-tuning raising the syntactic "
    "tasks.",
    "ablate": "Merchant et al. (2020): putting the pre-trained weights back into the bottom "
    "layers of an MNLI or SQuAD model costs it little, while the parser needs more of the "
    "model; freezing the bottom layers while fine-tuning shows the same split.",
}

#: Parser scores shown: (finetune.json key, column), on dev (``metrics``) and test.
PARSE_COLUMNS = (
    ("uas", "UAS"),
    ("las", "LAS"),
    ("uas_no_punct", "UAS no punct"),
    ("las_no_punct", "LAS no punct"),
)

Table = Callable[[list[dict], list[str]], str]


def read_step(folder: Path) -> SavedResults | None:
    """A step's ``results.json`` (or an earlier version's file, :func:`read_results`), or
    None when the step wrote none."""
    path = results_path(folder)
    return read_results(path) if path.exists() else None


def collect_extra(config, out: Path) -> dict:
    """``{"edge_probes": rows, "ablations": rows, "ablation_levels": rows}`` of a run."""
    ablations, levels = [], []
    for mode in ("restore", "freeze"):
        for job in config.finetune:
            saved = read_step(out / "ablate" / mode / job.name)
            if saved is not None:
                ablations += saved.rows
                levels += list(saved.extra.get("summary", {}).get("levels", []))
    edge = read_step(out / "edge")
    return {
        "edge_probes": [] if edge is None else edge.rows,
        "ablations": ablations,
        "ablation_levels": levels,
    }


def parse_section(finetune: dict, table: Table) -> str:
    """UAS/LAS of every parser job on dev and test, both punctuation conventions."""
    rows = []
    for name, rec in finetune.items():
        if rec.get("task") != "parse":
            continue
        for split, metrics in (("dev", rec.get("metrics")), ("test", rec.get("test_metrics"))):
            if metrics:
                row = {"model": name, "split": split, "words": metrics.get("n_words")}
                row.update({col: metrics.get(key) for key, col in PARSE_COLUMNS})
                rows.append(row)
    if not rows:
        return ""
    columns = ["model", "split", *(col for _, col in PARSE_COLUMNS), "words"]
    return (
        "<h3>Dependency parsing</h3><p>Biaffine parser (Dozat &amp; Manning 2017) on the "
        "encoder's last layer, decoded to trees by Chu-Liu/Edmonds. UAS/LAS over every word "
        "(punctuation included: the CoNLL 2018 convention) and without punctuation (the PTB "
        "convention); a label counts when its universal part matches.</p>" + table(rows, columns)
    )


def _edge_table(rows: Sequence[dict], table: Table) -> str:
    """One row per (task, layer or mix), one column per model."""
    models = sorted({r["model"] for r in rows})
    keys = sorted(
        {(r["task"], str(r["layer"]), r.get("mix_upto")) for r in rows},
        key=lambda k: (k[0], k[1] == "mix", int(k[2] if k[1] == "mix" else k[1])),
    )
    out = []
    for task, layer, upto in keys:
        row = {"task": task, "layer": layer if layer != "mix" else f"mix 0..{upto}"}
        for m in models:
            hit = [
                r.get("f1")
                for r in rows
                if r["model"] == m
                and r["task"] == task
                and str(r["layer"]) == layer
                and r.get("mix_upto") == upto
            ]
            row[m] = hit[0] if hit and hit[0] is not None else float("nan")
        out.append(row)
    return table(out, ["task", "layer", *models])


def edge_section(rows: Sequence[dict], figures_dir: Path, table: Table) -> str:
    """Edge-probe F1 per layer, the mixes and the expected layers, with figures."""
    if not rows:
        return ""
    from ..probe.figures import edge_figure

    parts = [
        "<h2>Edge probes: part of speech and dependency relations per layer</h2>",
        f"<p>{PAPER['edge']}</p>",
        "<p>Here: Tenney et al.'s edge-probing classifier (span projection, two-layer MLP) on "
        "each layer's frozen word vectors and on the scalar mixes of layers 0..l; micro F1 on "
        "EWT test.</p>",
    ]
    expected = [
        {
            "model": r["model"],
            "task": r["task"],
            "expected layer (mix weights)": r.get("expected_layer"),
            "expected layer (cumulative)": r.get("cumulative_expected_layer"),
        }
        for r in rows
        if r.get("expected_layer") is not None or r.get("cumulative_expected_layer") is not None
    ]
    if expected:
        parts.append(table(expected, list(expected[0])))
    for task in sorted({r["task"] for r in rows}):
        fig = edge_figure(rows, task)
        save_figure(fig, figures_dir / f"edge-{task}")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
    parts.append(_edge_table(rows, table))
    return "".join(parts)


def ablation_section(
    rows: Sequence[dict], levels: Sequence[dict], figures_dir: Path, table: Table
) -> str:
    """Restore and freeze tables and figures (task metric against k)."""
    if not rows:
        return ""
    from ..ablate.figures import ablation_figure

    parts = ["<h2>Layer ablations</h2>", f"<p>{PAPER['ablate']}</p>"]
    for mode, what in (
        (
            "restore",
            "pre-trained weights put back into the embeddings and bottom k layers (or the top "
            "k layers) of each fine-tuned model, its head kept",
        ),
        ("freeze", "fine-tuned again with the embeddings and bottom k layers frozen"),
    ):
        mine = [r for r in rows if r["mode"] == mode]
        if not mine:
            continue
        parts.append(f"<h3>{mode.capitalize()}: {html.escape(what)}</h3>")
        for metric in dict.fromkeys(r["metric"] for r in mine):
            fig = ablation_figure(mine, levels, metric=metric, mode=mode)
            save_figure(fig, figures_dir / f"ablate-{mode}-{metric}")
            parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
        columns = ["model", "task", "direction", "k", "metric", "value", "n_examples"]
        parts.append(table(mine, columns))
    return "".join(parts)
