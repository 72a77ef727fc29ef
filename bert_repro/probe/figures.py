"""Figures of a probe sweep and of the edge probes: one metric against layer, one line per
model (plotly)."""

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


def _line(points: Sequence[tuple], name: str, **style):
    """A ``lines+markers`` trace through ``(layer, value)`` points; ``style``: ``line=``,
    ``marker=`` and other ``go.Scatter`` keywords."""
    import plotly.graph_objects as go

    return go.Scatter(
        x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=name, **style
    )


def _by_layer_layout(fig, *, title: str, yaxis_title: str):
    """The look every probe figure shares: the layer on x (one tick a layer, 0 = embeddings),
    one legend entry a model."""
    fig.update_layout(
        title=title,
        xaxis_title="layer (0 = embeddings)",
        yaxis_title=yaxis_title,
        xaxis={"dtick": 1},
        template="plotly_white",
        legend_title="model",
    )
    return fig


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
            fig.add_trace(_line(points, model))
    ranks = sorted({int(r["rank"]) for r in rows if r["kind"] == kind})
    return _by_layer_layout(
        fig,
        title=f"{title} of {kind} probes by layer ({split}; rank {', '.join(map(str, ranks))})",
        yaxis_title=title.split(" (")[0],
    )


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


EDGE_TASK_TITLES = {"pos": "Part of speech (UPOS)", "deprel": "Dependency relation (universal)"}


def edge_figure(rows: Sequence[dict], task: str, *, split: str = "test"):
    """Edge-probe micro F1 of ``task`` against layer, one line per model.

    Single-layer probes are solid lines; the probes on the scalar mixes of layers ``0..l``
    (when there) are dashed lines of the same colour at ``x = l``, named with their
    cumulative expected layer ``E_Delta`` and the full mix's ``E_s``.

    Args:
        rows: edge results (:data:`bert_repro.probe.results.EDGE_COLUMNS`).
        task: ``"pos"`` or ``"deprel"``.
        split: ``"test"`` uses ``f1``; ``"dev"`` uses ``dev_f1``.

    Returns:
        A ``plotly.graph_objects.Figure``.
    """
    import plotly.colors
    import plotly.graph_objects as go

    column = "f1" if split == "test" else "dev_f1"
    cumulative = "cumulative_expected_layer" if split == "test" else "dev_cumulative_expected_layer"
    rows = [r for r in rows if r["task"] == task and r.get(column) is not None]
    palette = plotly.colors.qualitative.Plotly
    fig = go.Figure()
    for i, model in enumerate(sorted({r["model"] for r in rows})):
        color = palette[i % len(palette)]
        mine = [r for r in rows if r["model"] == model]
        single = sorted((int(r["layer"]), r[column]) for r in mine if r["layer"] != "mix")
        mixes = sorted((int(r["mix_upto"]), r) for r in mine if r["layer"] == "mix")
        if single:
            fig.add_trace(_line(single, model, line={"color": color}))
        if mixes:
            full = mixes[-1][1]
            notes = []
            if full.get(cumulative) is not None:
                notes.append(f"E_Δ {full[cumulative]:.2f}")
            if full.get("expected_layer") is not None:
                notes.append(f"E_s {full['expected_layer']:.2f}")
            fig.add_trace(
                _line(
                    [(u, r[column]) for u, r in mixes],
                    f"{model}, mix of 0..l" + (f" ({', '.join(notes)})" if notes else ""),
                    line={"color": color, "dash": "dash"},
                    marker={"symbol": "diamond"},
                )
            )
    return _by_layer_layout(
        fig,
        title=f"Edge probes: {EDGE_TASK_TITLES.get(task, task)} by layer ({split} micro F1)",
        yaxis_title="micro F1",
    )


def save_edge_figures(
    rows: Sequence[dict], folder: str | os.PathLike, *, png: bool | None = None
) -> list[Path]:
    """Write ``edge-<task>`` (HTML, and PNG where a browser engine is available) for each task
    in ``rows``: test F1 when the rows have it, else dev F1.

    Returns:
        The files written.
    """
    folder = Path(folder)
    written: list[Path] = []
    for task in sorted({r["task"] for r in rows}):
        task_rows = [r for r in rows if r["task"] == task]
        split = "test" if any(r.get("f1") is not None for r in task_rows) else "dev"
        written += save_figure(
            edge_figure(task_rows, task, split=split), folder / f"edge-{task}", png=png
        )
    return written
