"""Figures of a probe sweep: one metric against layer, one line per model (plotly)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..io import save_figure

METRIC_TITLES = {
    "uuas": ("distance", "UUAS"),
    "dspr": ("distance", "DSpr. (Spearman of distances, lengths 5-50)"),
    "root_acc": ("depth", "Root accuracy"),
    "nspr": ("depth", "NSpr. (Spearman of depths, lengths 5-50)"),
}


def metric_figure(rows: Sequence[dict], metric: str, *, split: str = "test"):
    """Line chart of ``metric`` against layer, one line per model.

    Args:
        rows: sweep results (see :data:`bert_repro.probe.sweep.COLUMNS`).
        metric: ``"uuas"``, ``"dspr"`` (distance probes), ``"root_acc"`` or ``"nspr"`` (depth).
        split: ``"test"`` uses the columns ``metric``; ``"dev"`` uses ``dev_<metric>``.

    Returns:
        A ``plotly.graph_objects.Figure`` (no trace for a model without values).
    """
    import plotly.graph_objects as go

    kind, title = METRIC_TITLES[metric]
    column = metric if split == "test" else f"dev_{metric}"
    fig = go.Figure()
    models = sorted({r["model"] for r in rows if r["kind"] == kind})
    for model in models:
        points = sorted(
            (int(r["layer"]), r[column])
            for r in rows
            if r["model"] == model and r["kind"] == kind and r.get(column) is not None
        )
        if points:
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in points],
                    y=[p[1] for p in points],
                    mode="lines+markers",
                    name=model,
                )
            )
    ranks = sorted({int(r["rank"]) for r in rows if r["kind"] == kind})
    fig.update_layout(
        title=f"{title} of {kind} probes by layer ({split}; rank {', '.join(map(str, ranks))})",
        xaxis_title="layer (0 = embeddings)",
        yaxis_title=title.split(" (")[0],
        xaxis={"dtick": 1},
        template="plotly_white",
        legend_title="model",
    )
    return fig


def save_sweep_figures(
    rows: Sequence[dict], folder: str | os.PathLike, *, png: bool | None = None
) -> list[Path]:
    """Write one figure per metric (HTML always, PNG where a browser engine is available).

    Uses test metrics when the rows have them, else dev metrics.

    Returns:
        The files written.
    """
    folder = Path(folder)
    written: list[Path] = []
    for metric, (kind, _) in METRIC_TITLES.items():
        kind_rows = [r for r in rows if r["kind"] == kind]
        if not kind_rows:
            continue
        split = "test" if any(r.get(metric) is not None for r in kind_rows) else "dev"
        fig = metric_figure(kind_rows, metric, split=split)
        written += save_figure(fig, folder / metric, png=png)
    return written
