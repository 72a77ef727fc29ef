"""The edge probes of one prepared model and task, trained and turned into result rows.

The features come from the model's :class:`~bert_repro.probe.prepare.ProbeTarget` (its word
feature cache, every hidden state of :class:`~bert_repro.probe.edge.EdgePlan` read once per
batch); the columns are :data:`bert_repro.probe.edge.EDGE_COLUMNS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .edge_config import EdgeSettings
from .edge_data import TASK_LABELS, edge_batches, edge_examples
from .edge_model import StackedEdgeProbes
from .edge_train import predict_edge, train_edge_probes
from .metrics import micro_f1
from .prepare import ProbeTarget
from .results import EDGE_COLUMNS
from .scalar_mix import cumulative_expected_layer, expected_layer

Log = Callable[[str], None]


def _name(key: tuple) -> str:
    layer, upto = key
    return f"mix 0..{upto}" if layer == "mix" else f"layer {layer}"


def edge_rows(
    target: ProbeTarget,
    task: str,
    plan,
    settings: EdgeSettings,
    log: Log,
    *,
    verbose: bool = False,
    strategy=None,
) -> list[dict]:
    """Train ``plan``'s probes of ``task`` on the target's train split together, each as if
    alone (best dev F1 epoch kept), score them on dev and test; one row per probe.

    Args:
        target: a model whose :meth:`~bert_repro.probe.prepare.ProbeTarget.features` are ready.
        task: ``"pos"`` or ``"deprel"``.
        plan: an :class:`~bert_repro.probe.edge.EdgePlan`.
        settings: the run's :class:`~bert_repro.probe.edge_config.EdgeSettings`.
        log: progress lines; ``verbose`` adds one per probe and epoch.
        strategy: train under it (:func:`~bert_repro.probe.edge_train.train_edge_probes`).
    """
    probes, trained, scores = _train_and_score(target, task, plan, settings, log, verbose, strategy)
    rows = _result_rows(target, task, plan, probes, trained, scores)
    _add_cumulative(rows, plan, scores)
    return rows


def _train_and_score(target, task, plan, settings: EdgeSettings, log: Log, verbose, strategy):
    """The stacked probes, trained; their training results; ``{split: ([F1 per probe], n)}``
    on dev and test."""
    examples = {split: edge_examples(ds.sentences, task) for split, ds in target.splits.items()}

    def batches(split: str, shuffle: bool = False):
        return edge_batches(
            examples[split],
            target.stores[split],
            plan.states,
            batch_size=settings.batch_size,
            shuffle=shuffle,
            seed=settings.seed,
        )

    probes = StackedEdgeProbes(
        plan.probes,
        plan.mix,
        len(plan.states),
        target.hidden,
        examples["train"].num_spans,
        len(TASK_LABELS[task]),
        head=settings.head,
        seed=settings.seed,
    )
    names = [f"    {task} {_name(key)}" for key in plan.keys]
    log(
        f"  {task}: {probes.num_probes} probes on {len(examples['train'])} train examples "
        f"({len(TASK_LABELS[task])} labels)"
    )
    t0 = time.monotonic()
    trained = train_edge_probes(
        probes,
        batches("train", shuffle=True),
        batches("dev"),
        training=settings.training,
        names=names,
        log=log if verbose else None,
        strategy=strategy,
    )
    log(f"  {task}: trained in {time.monotonic() - t0:.0f}s")
    scores = {}
    for split in ("dev", "test"):
        if split in target.splits:
            pred, gold, _ = predict_edge(probes, batches(split))
            scores[split] = ([micro_f1(gold, pred[p]) for p in range(probes.num_probes)], gold.size)
    return probes, trained, scores


def _result_rows(target, task, plan, probes, trained, scores: dict) -> list[dict]:
    """One row of :data:`EDGE_COLUMNS` per probe (a mix's row with its weights, scale and
    expected layer)."""
    weights = probes.mix_weights().numpy()
    gammas = probes.mix_scale.numpy()
    rows = []
    for p, (key, result) in enumerate(zip(plan.keys, trained, strict=True)):
        layer, upto = key
        row: dict = {c: None for c in EDGE_COLUMNS}
        row.update(
            model=target.spec.label,
            task=task,
            layer=layer,
            mix_upto=upto,
            dev_loss=result.dev_loss,
            epochs=result.epochs,
            best_epoch=result.best_epoch,
            train_seconds=round(result.seconds, 1),
            num_labels=len(TASK_LABELS[task]),
            model_fingerprint=target.fingerprint,
            tokenizer_fingerprint=target.tokenizer_fingerprint,
        )
        for split, (f1s, n) in scores.items():
            prefix = "" if split == "test" else "dev_"
            row[f"{prefix}f1"] = float(f1s[p])
            row[f"{prefix}n"] = int(n)
        if layer == "mix":
            states = [plan.states[s] for s in plan.probes[p]]
            s = weights[p, list(plan.probes[p])]
            row.update(
                mix_weights=[round(float(w), 6) for w in s],
                gamma=float(gammas[p]),
                expected_layer=expected_layer(s, states),
            )
        rows.append(row)
    return rows


def _add_cumulative(rows: list[dict], plan, scores: dict) -> None:
    """On the mix of all layers, ``E_Delta[l]`` from the mixes ``0..l`` (all present)."""
    uppers = {key[1]: p for p, key in enumerate(plan.keys) if key[0] == "mix"}
    top = len(plan.states) - 1
    if sorted(uppers) != list(range(top + 1)) or top < 1:
        return
    full = rows[uppers[top]]
    for split, (f1s, _) in scores.items():
        prefix = "" if split == "test" else "dev_"
        cumulative = [f1s[uppers[u]] for u in range(top + 1)]
        value = cumulative_expected_layer(cumulative)
        full[f"{prefix}cumulative_expected_layer"] = None if np.isnan(value) else value


def edge_row_line(row: dict) -> str:
    """One progress line for a finished row: its test (else dev) F1, training, and the
    expected layers of a mix."""
    name = _name((row["layer"], row.get("mix_upto")))
    split = "test" if row.get("f1") is not None else "dev"
    f1 = row["f1"] if split == "test" else row["dev_f1"]
    line = f"  {row['task']:6s} {name:10s}: {split} F1 {f1:.4f}"
    if row.get("expected_layer") is not None:
        line += f", E_s[l] {row['expected_layer']:.2f}"
    key = "cumulative_expected_layer" if split == "test" else "dev_cumulative_expected_layer"
    if row.get(key) is not None:
        line += f", E_Delta[l] {row[key]:.2f}"
    line += f"; dev F1 {row['dev_f1']:.4f}, {row['epochs']} epochs"
    return line
