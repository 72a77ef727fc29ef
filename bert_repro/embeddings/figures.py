"""Plotly figures of the embeddings studies (save them with :func:`bert_repro.io.save_figure`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .decompose import InputEmbeddingParts
from .norms import NORM_COLUMNS

_NORM_LABELS = {
    "norm_embedding": "embedding-layer row |E[w]|",
    "norm_hidden": "mean last hidden state of the definition",
    "norm_pooler": "pooler output of the definition",
}


def norms_figure(norms, *, title: str = "Norms of word vectors before and after BERT"):
    """Histograms (one panel each, own x scale) and box plots of the three norm columns of a
    norms table or a :class:`~bert_repro.embeddings.norms.NormsResult`."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    norms = getattr(norms, "table", norms)
    cols = [c for c in NORM_COLUMNS if c in norms.columns]
    fig = make_subplots(
        rows=2,
        cols=len(cols),
        row_heights=[0.75, 0.25],
        subplot_titles=[_NORM_LABELS[c] for c in cols],
        vertical_spacing=0.08,
    )
    for j, col in enumerate(cols, start=1):
        values = np.asarray(norms[col], dtype=float)
        fig.add_trace(go.Histogram(x=values, nbinsx=60, name=col, showlegend=False), row=1, col=j)
        fig.add_trace(go.Box(x=values, name=col, boxpoints=False, showlegend=False), row=2, col=j)
        fig.update_xaxes(title_text="L2 norm", row=2, col=j)
    fig.update_yaxes(title_text="words", row=1, col=1)
    fig.update_layout(title=f"{title} (n = {len(norms)})", bargap=0.02)
    return fig


def similarity_heatmap(
    matrix: np.ndarray, labels: Sequence[str], *, title: str = "Cosine similarity"
):
    """Annotated heatmap of a square or rectangular similarity matrix."""
    import plotly.graph_objects as go

    matrix = np.asarray(matrix, dtype=float)
    rows = list(labels)[: matrix.shape[0]]
    cols = list(labels)[: matrix.shape[1]] if matrix.shape[0] == matrix.shape[1] else None
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=cols,
            y=rows,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            text=np.round(matrix, 3),
            texttemplate="%{text}",
        )
    )
    fig.update_layout(title=title, yaxis_autorange="reversed")
    return fig


def decomposition_figure(parts: InputEmbeddingParts, *, title: str = "Input embedding parts"):
    """Per-wordpiece L2 norms of token, segment, position embeddings, their sum and LayerNorm."""
    import plotly.graph_objects as go

    labels = [f"{i}:{t}" for i, t in enumerate(parts.tokens)]
    fig = go.Figure()
    for name, values in parts.norms().items():
        fig.add_trace(go.Bar(x=labels, y=values, name=name))
    fig.update_layout(title=title, barmode="group", xaxis_title="wordpiece", yaxis_title="L2 norm")
    return fig


def confusion_figure(confusion, class_names: Sequence[str], *, title: str = "Confusion matrix"):
    """Heatmap of a confusion matrix (rows = true class, columns = predicted)."""
    import plotly.graph_objects as go

    z = np.asarray(confusion)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(class_names),
            y=list(class_names),
            colorscale="Blues",
            text=z,
            texttemplate="%{text}",
        )
    )
    fig.update_layout(
        title=title, xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed"
    )
    return fig


def training_figure(histories: dict[str, dict[str, list[float]]], *, title: str = "Head training"):
    """Training and validation accuracy per epoch, one pair of lines per feature kind."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for kind, hist in histories.items():
        for key, dash in (("accuracy", "solid"), ("val_accuracy", "dash")):
            if key in hist:
                y = hist[key]
                fig.add_trace(
                    go.Scatter(
                        x=list(range(1, len(y) + 1)),
                        y=y,
                        mode="lines",
                        name=f"{kind} {key}",
                        line={"dash": dash},
                    )
                )
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="accuracy")
    return fig
