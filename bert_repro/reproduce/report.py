"""Assemble ``results.json`` and ``report.html`` from the outputs of the finished steps.

``results.json`` has the package's one schema (:mod:`bert_repro.outputs`): ``meta`` (command
line, the run's settings, versions, models, time) and ``rows``, one per claim of the paper
(``id``, ``claim``, ``verdict``, ``rule``, ``reason``; also ``results.csv``). Beside them, as
further top-level sections, the numbers the claims are checked on, read back from the steps'
files (``finetune``, ``compare``, ``probes``, ``edge_probes``, ``ablations``,
``ablation_levels``), the steps' ``durations_seconds``, and ``claims`` with each claim's
evidence: they are results, not what made the run (``meta``), and nested, not rows.

The report is one self-contained HTML file (plotly.js inlined once), readable offline: what
was run, the fine-tuning metrics, the layer-wise comparison curves, the probe curves per
model and layer, tables of every number, a short text that reads the numbers against the
paper's findings, and the paper's claims each checked by a fixed rule (:mod:`.claims`; also
``claims`` in ``results.json``). Every figure is also written to ``figures/`` (HTML, and PNG where a browser
engine is available).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..io import atomic_write_text, package_versions, read_json, save_figure
from ..outputs import write_results
from .claim_inputs import claim_inputs
from .claims import check_claims
from .config import ReproduceConfig
from .sections import ablation_section, collect_extra, edge_section, parse_section, read_step

#: Columns of the report's rows (one a claim; the evidence is in the ``claims`` section).
CLAIM_COLUMNS = ("id", "claim", "verdict", "rule", "reason")

PAPER = {
    "comparison": "Merchant et al. (2020) find that fine-tuning changes mostly the top layers: "
    "for MNLI and SQuAD the representations below the top few layers stay close to the base "
    "model's, and the changes grow towards the last layer (SQuAD most).",
    "probes": "Their structural probes find that syntax stays recoverable after fine-tuning: "
    "the probe curves of the fine-tuned models follow the base model's, with small losses "
    "concentrated in the top layers. Hewitt & Manning report for BERT-base layer 7 (rank 128, "
    "PTB) UUAS 0.799 and DSpr 0.85.",
}


def run_models(config: ReproduceConfig, out: Path) -> dict[str, dict]:
    """``meta["models"]`` of the report: the base and fine-tuned models with the fingerprints
    the comparison (else the probe sweep) recorded."""
    models: dict[str, dict] = {}
    folders = [out / "probes", *(out / "compare" / s.name for s in config.texts)]
    for folder in folders:
        saved = read_step(folder)
        if saved is None:
            continue
        for name, entry in (saved.meta.get("models") or {}).items():
            models[config.base_label if name == "base" else name] = entry
    return models


def collect(config: ReproduceConfig, out: Path) -> dict:
    """Every number of the run, read back from the steps' own files."""
    finetune = {}
    for job in config.finetune:
        path = out / "models" / job.name / "finetune.json"
        if path.exists():
            rec = read_json(path)
            finetune[job.name] = {
                "task": job.task,
                "metrics": rec.get("metrics", {}),
                "steps": rec.get("steps"),
                "train_seconds": rec.get("train_seconds"),
                "test_metrics": rec.get("test_metrics"),
                "config": rec.get("config", {}),
                "data": rec.get("data", rec.get("source")),
            }
    compare = {}
    for source in config.texts:
        saved = read_step(out / "compare" / source.name)
        if saved is not None:
            compare[source.name] = saved.extra.get("summary", {})
    saved = read_step(out / "probes")
    probes = [] if saved is None else saved.rows
    return {
        "finetune": finetune,
        "compare": compare,
        "probes": probes,
        **collect_extra(config, out),
    }


def _frame(result: dict):
    import pandas as pd

    rows = []
    for name, metrics in result["models"].items():
        n = len(metrics["cosine"])
        for layer in range(n):
            rows.append(
                {
                    "model": name,
                    "layer": layer,
                    **{m: (v[layer] if v else np.nan) for m, v in metrics.items()},
                }
            )
    return pd.DataFrame(rows)


def _table(rows: list[dict], columns: list[str], fmt: str = "{:.3f}") -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else fmt.format(v)
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _probe_table(rows: list[dict]) -> str:
    """One row per layer, one column per (metric, model)."""
    models = sorted({r["model"] for r in rows})
    layers = sorted({int(r["layer"]) for r in rows})
    metrics = [("uuas", "distance"), ("dspr", "distance"), ("root_acc", "depth"), ("nspr", "depth")]
    table_rows, columns = [], ["layer"]
    for metric, _ in metrics:
        columns += [f"{metric} {m}" for m in models]
    for layer in layers:
        row = {"layer": layer}
        for metric, kind in metrics:
            for m in models:
                hit = [
                    r.get(metric)
                    for r in rows
                    if r["model"] == m and r["kind"] == kind and int(r["layer"]) == layer
                ]
                row[f"{metric} {m}"] = hit[0] if hit and hit[0] is not None else float("nan")
        table_rows.append(row)
    return _table(table_rows, columns)


def _describe_source(source) -> str:
    where = (
        f"in-domain for {', '.join(source.in_domain_for)}"
        if source.in_domain_for
        else "in-domain for none of the fine-tuned models"
    )
    return f"<b>{html.escape(source.name)}</b> = {html.escape(source.spec)} ({where})"


def summary(data: dict) -> list[str]:
    """The run's main findings in a few sentences, computed from its numbers."""
    lines = []
    for source, result in data["compare"].items():
        for name, metrics in result["models"].items():
            cos = np.asarray(metrics["cosine"], dtype=float)
            high = np.flatnonzero(cos >= 0.99)
            kept = int(high.max()) if high.size and high.min() == 0 else -1
            lines.append(
                f"On {html.escape(source)}, <b>{html.escape(name)}</b> keeps the base's "
                f"representations (cosine &ge; 0.99) up to layer {max(kept, 0)}; the top layer "
                f"falls to {cos[-1]:.2f}."
            )
    rows = [r for r in data["probes"] if r["kind"] == "distance" and r.get("uuas") is not None]
    models = sorted({r["model"] for r in rows})
    if len(models) > 1:
        base = models[0] if not data["finetune"] else None
        names = set(data["finetune"])
        base = next((m for m in models if m not in names), base)
        uuas = {(r["model"], int(r["layer"])): r["uuas"] for r in rows}
        for m in models:
            if m == base:
                continue
            diffs = [
                uuas[(m, k)] - uuas[(base, k)] for (mm, k) in uuas if mm == m and (base, k) in uuas
            ]
            if diffs:
                lines.append(
                    f"Probes on <b>{html.escape(m)}</b>: UUAS differs from {html.escape(str(base))} "
                    f"by {min(diffs):+.3f} to {max(diffs):+.3f} across layers."
                )
    return lines


def comparison_findings(result: dict, source: str) -> list[str]:
    """Plain sentences on where each fine-tuned model moved, read off the cosine curve."""
    lines = []
    for name, metrics in result["models"].items():
        cos = np.asarray(metrics["cosine"], dtype=float)
        n = len(cos) - 1
        change = 1.0 - cos
        stable = int(np.argmax(cos < 0.99)) - 1 if (cos < 0.99).any() else n
        top_third = change[-max(1, n // 3) :].sum() / max(change.sum(), 1e-12)
        lines.append(
            f"<b>{html.escape(name)}</b> vs base on {html.escape(source)}: cosine "
            f"{cos[0]:.3f} at the embeddings, {cos[n // 2]:.3f} at layer {n // 2}, "
            f"{cos[-1]:.3f} at the top layer {n}; it stays at or above 0.99 "
            + (f"up to layer {stable}" if stable >= 0 else "at no layer")
            + f", and the top third of the layers carries {100 * top_third:.0f}% of the total "
            "change (1 - cosine summed over layers)."
        )
    return lines


def probe_findings(rows: list[dict]) -> list[str]:
    lines = []
    by_model: dict[str, dict[int, dict]] = {}
    for r in rows:
        if r["kind"] == "distance" and r.get("uuas") is not None:
            by_model.setdefault(r["model"], {})[int(r["layer"])] = r
    for model, layers in by_model.items():
        best = max(layers, key=lambda k: layers[k]["uuas"])
        l0 = layers.get(0, {}).get("uuas")
        top = max(layers)
        lines.append(
            f"<b>{html.escape(model)}</b>: distance-probe UUAS peaks at layer {best} "
            f"({layers[best]['uuas']:.3f}, DSpr {layers[best]['dspr']:.3f})"
            + (f", against {l0:.3f} at the embeddings" if l0 is not None else "")
            + f"; top layer {top}: {layers[top]['uuas']:.3f}."
        )
    return lines


#: Background colour of each verdict in the claims table.
VERDICT_COLOURS = {"supported": "#1a7f37", "not supported": "#cf222e", "inconclusive": "#6e7781"}


def claims_section(claims: list[dict]) -> str:
    """The "Claims" section: one row per claim (:func:`.claims.check_claims` as dicts) with
    its verdict colour-coded, the reason and numbers behind it, and the rule that decided."""
    rows = []
    for c in claims:
        numbers = html.escape(json.dumps(c["evidence"], indent=1))
        rows.append(
            f"<tr><td>{html.escape(c['claim'])}</td>"
            f'<td><span class="verdict" style="background:{VERDICT_COLOURS[c["verdict"]]}">'
            f"{html.escape(c['verdict'])}</span></td>"
            f"<td>{html.escape(c['reason'])}<details><summary>numbers</summary>"
            f"<pre>{numbers}</pre></details></td>"
            f"<td>{html.escape(c['rule'])}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("claim", "verdict", "evidence", "rule"))
    return (
        "<h2>Claims</h2><p>The paper's claims, each checked by a fixed rule on this run's "
        "numbers only (<code>bert_repro/reproduce/claims.py</code>; also under "
        "<code>claims</code> in <code>results.json</code>). <i>Inconclusive</i> says what is "
        "missing or why the numbers do not decide.</p>"
        f'<table class="claims"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
        "</tbody></table>"
    )


def write_report(config: ReproduceConfig, out: Path, state, seconds: float) -> Path:
    """Write ``results.json``, the figures and ``report.html``; return the report's path."""
    from plotly.offline import get_plotlyjs

    from ..plot.figures import layer_similarity_figure
    from ..probe.figures import metric_figure

    data = collect(config, out)
    durations = {name: step["seconds"] for name, step in state.steps.items()}
    numbers = {"durations_seconds": durations, "report_seconds": round(seconds, 1), **data}
    results = {"meta": {"settings": config.to_dict()}, **numbers}
    claims = [claim.to_dict() for claim in check_claims(claim_inputs(results))]
    write_results(
        out,
        [{k: c[k] for k in CLAIM_COLUMNS} for c in claims],
        command="reproduce",
        settings=config.to_dict(),
        models=run_models(config, out),
        extra={**numbers, "claims": claims},
    )
    figures_dir = out / "figures"
    sections = []

    # Fine-tuning
    ft_rows = []
    for name, rec in data["finetune"].items():
        m = rec["metrics"]
        ft_rows.append(
            {
                "model": name,
                "task": rec["task"],
                "steps": rec["steps"],
                "accuracy": m.get("accuracy"),
                "exact match": m.get("exact_match"),
                "F1": m.get("f1"),
                "LAS": m.get("las"),
                "eval examples": m.get("n_examples", m.get("n_questions")),
                "train seconds": rec.get("train_seconds"),
            }
        )
    sections.append(
        "<h2>1. Fine-tuning</h2><p>Each model starts from the base and is trained with Keras "
        "<code>fit</code>; the metric is on held-out data (accuracy; SQuAD exact match and F1 in "
        "percent; the parser's LAS on dev).</p>"
        + _table(ft_rows, list(ft_rows[0]) if ft_rows else ["model"], "{:.3f}")
        + parse_section(data["finetune"], _table)
    )

    # Comparison
    figs = []
    texts = ["<h2>2. Which layers did fine-tuning change?</h2>", f"<p>{PAPER['comparison']}</p>"]
    for source, result in data["compare"].items():
        frame = _frame(result)
        for metric in ("cosine", "cka"):
            if metric in frame and not frame[metric].isna().all():
                fig = layer_similarity_figure(
                    frame,
                    metric,
                    title=f"{metric.upper() if metric == 'cka' else 'Cosine'} "
                    f"similarity to the base per layer, on {source} ({result['n_texts']} texts)",
                )
                save_figure(fig, figures_dir / f"compare-{source}-{metric}")
                figs.append(fig.to_html(full_html=False, include_plotlyjs=False))
        texts.append(
            "<ul>" + "".join(f"<li>{s}</li>" for s in comparison_findings(result, source)) + "</ul>"
        )
        texts.append("".join(figs))
        figs = []
        wide = frame.pivot(index="layer", columns="model", values=["cosine", "rsa", "cka"])
        wide.columns = [f"{metric} {model}" for metric, model in wide.columns]
        wide = wide.reset_index()
        texts.append(_table(wide.to_dict("records"), list(wide.columns)))
    sections.append("".join(texts))

    # Probes
    rows = data["probes"]
    limit = config.probe_limit
    texts = [
        "<h2>3. Is syntax still readable? Structural probes on every layer</h2>",
        f"<p>{PAPER['probes']}</p>",
        f"<p>Here: rank-{config.probe_rank} probes, at most {config.probe_epochs} epochs, "
        + (f"the first {limit} sentences of each EWT split" if limit else "all of EWT")
        + " (train, dev for model selection, test for the numbers shown). A small setup for a "
        "CPU: the README has the full-EWT sweep of the base model.</p>",
    ]
    if rows:
        texts.append("<ul>" + "".join(f"<li>{s}</li>" for s in probe_findings(rows)) + "</ul>")
        for metric, kind in (
            ("uuas", "distance"),
            ("dspr", "distance"),
            ("root_acc", "depth"),
            ("nspr", "depth"),
        ):
            kind_rows = [r for r in rows if r["kind"] == kind and r.get(metric) is not None]
            if kind_rows:
                fig = metric_figure(kind_rows, metric)
                save_figure(fig, figures_dir / f"probe-{metric}")
                texts.append(fig.to_html(full_html=False, include_plotlyjs=False))
        texts.append(_probe_table(rows))
    sections.append("".join(texts))

    sections.append(edge_section(data["edge_probes"], figures_dir, _table))
    sections.append(
        ablation_section(data["ablations"], data["ablation_levels"], figures_dir, _table)
    )

    # Settings
    step_rows = [{"step": k, "seconds": v} for k, v in durations.items()]
    versions = package_versions()
    sections.append(
        "<h2>How this was run</h2>"
        f"<p>Preset <code>{html.escape(config.preset)}</code>; base model "
        f"<code>{html.escape(config.base or 'all-MiniLM-L6-v2 (shipped)')}</code>; seed "
        f"{config.seed}. Every number here is in <code>results.json</code> next to this file, "
        "with the full settings and package versions.</p>"
        + _table(step_rows, ["step", "seconds"], "{:.0f}")
        + "<p>"
        + ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in versions.items())
        + "</p>"
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>bert_repro: what happens to BERT embeddings during fine-tuning</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222;
       line-height: 1.45; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }}
code {{ background: #f5f5f5; padding: 0 3px; }}
table.claims td {{ text-align: left; vertical-align: top; }}
.verdict {{ color: #fff; padding: 1px 6px; border-radius: 3px; white-space: nowrap; }}
pre {{ font-size: 0.9em; max-height: 20em; overflow: auto; }}
</style></head><body>
<h1>What happens to BERT embeddings during fine-tuning?</h1>
<p>A reproduction of Merchant, Rahimtoroghi, Pavlick &amp; Tenney (BlackboxNLP 2020) with
<a href="https://aclanthology.org/N19-1419/">structural probes</a> (Hewitt &amp; Manning 2019),
run by <code>bert-repro reproduce --preset {html.escape(config.preset)}</code>. The steps
took {sum(durations.values()) / 60:.1f} minutes in all when they ran; this invocation took
{seconds / 60:.1f} minutes (finished steps are reused, not redone).</p>
<h2>In short</h2><ul>{"".join(f"<li>{line}</li>" for line in summary(data))}</ul>
<p>Texts: {"; ".join(_describe_source(t) for t in config.texts)}.</p>
{claims_section(claims)}
{"".join(sections)}
</body></html>
"""
    return atomic_write_text(out / "report.html", page)
