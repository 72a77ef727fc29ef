"""Figures of layer ablations: the task metric against ``k``, one line per model / task /
direction, the reference levels as dashed horizontal lines (plotly)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import DataError, check_choice
from .result import MODES

X_TITLES = {
    "restore": "k = layers restored to the base weights "
    "(bottom: embeddings + layers 0..k-1; top: layers L-k..L-1)",
    "freeze": "k = layers frozen while fine-tuning (embeddings + layers 0..k-1)",
}
LEVEL_NAMES = {"finetuned": "fine-tuned (k = 0)", "base": "base encoder + fine-tuned head"}
LEVEL_DASH = {"finetuned": "dash", "base": "dot"}


def ablation_figure(
    rows: Sequence[dict], levels: Sequence[dict] = (), *, metric: str, mode: str = "restore"
):
    """Line chart of ``metric`` against ``k`` for one ablation mode.

    Args:
        rows: :class:`~bert_repro.ablate.result.AblationResult` rows.
        levels: its reference levels; each is drawn over ``k = 0..L`` as a dashed line.
        metric: the metric to plot (e.g. ``"accuracy"``).
        mode: ``"restore"`` or ``"freeze"``.

    Returns:
        A ``plotly.graph_objects.Figure``: one trace per (model, task, direction) with values,
        then one per level.

    Raises:
        DataError: no row has this mode and metric.
    """
    import plotly.graph_objects as go

    check_choice("mode", mode, MODES)
    chosen = [r for r in rows if r["mode"] == mode and r["metric"] == metric]
    if not chosen:
        raise DataError(f"no {mode} rows with the metric {metric!r} to plot")
    fig = go.Figure()
    lines = dict.fromkeys((r["model"], r["task"], r["direction"]) for r in chosen)
    for model, task, direction in lines:
        points = sorted(
            (r["k"], r["value"])
            for r in chosen
            if (r["model"], r["task"], r["direction"]) == (model, task, direction)
        )
        label = f"{model} ({task})" + (f", {direction} k" if mode == "restore" else "")
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=label
            )
        )
    depth = {(r["model"], r["task"]): r["num_layers"] for r in chosen}
    for lev in levels:
        key = (lev["model"], lev["task"])
        if lev["mode"] != mode or lev["metric"] != metric or key not in depth:
            continue
        fig.add_trace(
            go.Scatter(
                x=[0, depth[key]],
                y=[lev["value"], lev["value"]],
                mode="lines",
                line={"dash": LEVEL_DASH.get(lev["level"], "dashdot"), "width": 1},
                name=f"{lev['model']} ({lev['task']}): {LEVEL_NAMES.get(lev['level'], lev['level'])}",
            )
        )
    tasks = ", ".join(dict.fromkeys(r["task"] for r in chosen))
    fig.update_layout(
        title=f"{metric} after {'restoring' if mode == 'restore' else 'freezing'} "
        f"k layers ({tasks})",
        xaxis_title=X_TITLES[mode],
        yaxis_title=metric,
        xaxis={"dtick": 1},
        template="plotly_white",
        legend_title="model (task)",
    )
    return fig
