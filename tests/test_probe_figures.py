"""The probe figures: one line per model through its (layer, value) points, the shared layer axis."""

from __future__ import annotations

import pytest

from bert_repro.probe.figures import edge_figure, metric_figure


def _sweep_rows():
    rows = []
    for model, offset in (("base", 0.0), ("mnli", 0.5)):
        for layer in (2, 0, 1):  # out of order: the figure sorts by layer
            rows.append(
                {"model": model, "kind": "distance", "layer": layer, "rank": 8,
                 "uuas": offset + layer / 10, "dev_uuas": None if layer == 1 else 0.9}
            )  # fmt: skip
    rows.append({"model": "base", "kind": "depth", "layer": 0, "rank": 8, "root_acc": 0.3})
    return rows


def test_metric_figure_one_sorted_line_per_model_on_the_layer_axis():
    fig = metric_figure(_sweep_rows(), "uuas")
    assert [t.name for t in fig.data] == ["base", "mnli"]  # depth rows are not drawn
    assert [list(t.x) for t in fig.data] == [[0, 1, 2], [0, 1, 2]]
    assert list(fig.data[1].y) == pytest.approx([0.5, 0.6, 0.7])
    assert all(t.mode == "lines+markers" for t in fig.data)
    assert fig.layout.xaxis.title.text == "layer (0 = embeddings)"
    assert fig.layout.xaxis.dtick == 1 and fig.layout.legend.title.text == "model"
    assert fig.layout.yaxis.title.text == "UUAS"
    assert "rank 8" in fig.layout.title.text
    dev = metric_figure(_sweep_rows(), "uuas", split="dev")
    assert [list(t.x) for t in dev.data] == [[0, 2], [0, 2]]  # no value, no point


def test_edge_figure_single_layers_solid_and_mixes_dashed_in_one_colour():
    rows = [{"model": "base", "task": "pos", "layer": k, "f1": 0.5 + k / 10} for k in (1, 0)]
    rows += [
        {"model": "base", "task": "pos", "layer": "mix", "mix_upto": u, "f1": 0.7 + u / 10,
         "cumulative_expected_layer": 0.8, "expected_layer": 0.6}
        for u in (1, 0)
    ]  # fmt: skip
    rows.append({"model": "base", "task": "deprel", "layer": 0, "f1": 0.1})
    single, mix = edge_figure(rows, "pos").data
    assert (list(single.x), list(single.y)) == ([0, 1], pytest.approx([0.5, 0.6]))
    assert (list(mix.x), list(mix.y)) == ([0, 1], pytest.approx([0.7, 0.8]))
    assert mix.line.dash == "dash" and mix.line.color == single.line.color
    assert mix.name == "base, mix of 0..l (E_Δ 0.80, E_s 0.60)"
    fig = edge_figure(rows, "pos")
    assert fig.layout.xaxis.title.text == "layer (0 = embeddings)"
    assert fig.layout.yaxis.title.text == "micro F1" and fig.layout.xaxis.dtick == 1
