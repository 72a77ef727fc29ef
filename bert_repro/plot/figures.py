"""Plotly figures of layer-wise similarity: one line per fine-tuned model, layer on x."""

from __future__ import annotations

import pandas as pd

from ..errors import DataError, check_choice

METRICS: tuple[str, ...] = ("cosine", "rsa", "cka")
METRIC_TITLES = {
    "cosine": "token cosine similarity",
    "rsa": "RSA (correlation of token similarity matrices)",
    "cka": "linear CKA",
}


def layer_similarity_figure(
    frame: pd.DataFrame, metric: str = "cosine", *, title: str | None = None
):
    """Similarity vs layer, one line per compared model.

    Args:
        frame: long or wide table with columns ``model``, ``layer`` and ``metric`` (as
            :meth:`bert_repro.plot.ComparisonResult.to_frame` gives it).
        metric: ``"cosine"``, ``"rsa"`` or ``"cka"``.
        title: the figure's title (default: names the metric).

    Returns:
        A ``plotly.graph_objects.Figure``; layer 0 is the embedding output.
    """
    import plotly.express as px

    check_choice("metric", metric, METRICS)
    if metric not in frame.columns or frame[metric].isna().all():
        raise DataError(f"the comparison holds no {metric!r} values to plot")
    fig = px.line(
        frame,
        x="layer",
        y=metric,
        color="model",
        markers=True,
        title=title or f"Base vs fine-tuned: {METRIC_TITLES[metric]} per layer",
        labels={"layer": "layer (0 = embeddings)", metric: METRIC_TITLES[metric], "model": "vs"},
    )
    fig.update_xaxes(dtick=1)
    return fig


def overview_figure(frame: pd.DataFrame, *, title: str | None = None):
    """All available metrics side by side (one panel per metric, one line per model)."""
    import plotly.express as px

    metrics = [m for m in METRICS if m in frame.columns and not frame[m].isna().all()]
    if not metrics:
        raise DataError("the comparison holds no similarity values to plot")
    long = frame.melt(
        id_vars=["model", "layer"], value_vars=metrics, var_name="metric", value_name="similarity"
    )
    fig = px.line(
        long,
        x="layer",
        y="similarity",
        color="model",
        facet_col="metric",
        markers=True,
        title=title or "Base vs fine-tuned, per layer",
        labels={"layer": "layer", "model": "vs"},
    )
    fig.update_xaxes(dtick=1)
    return fig
