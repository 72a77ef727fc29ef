"""Edge probing (Tenney et al., ICLR 2019; ACL 2019) of every layer of one or more models.

For each model: its word features for every hidden state are extracted once per split into the
feature cache (the entries the structural probes read, :mod:`.prepare`); then, per task
(``"pos"``, ``"deprel"``, :mod:`.edge_data`), one probe per layer asked and the scalar-mix
probes (:class:`~bert_repro.probe.edge_config.EdgeSettings` ``mixes``) are trained together
(:func:`~bert_repro.probe.edge_train.train_edge_probes`, each as if alone), selected on dev
micro F1, and scored on test. Results go to ``<out>/results.json`` and ``.csv``
(:class:`~bert_repro.probe.results.ResultsFile`, rewritten after every task, so an interrupted
run resumes: a (model, task) whose rows are all there with the same model weights and tokenizer
is skipped), figures to ``<out>/figures/``.

A row (:data:`EDGE_COLUMNS`) is one probe: ``layer`` is the hidden state (int) of a single-layer
probe, or ``"mix"`` for a scalar mix of the layers ``0..mix_upto``; ``f1``/``n`` are its test
micro F1 and example count, ``dev_f1``/``dev_n`` the same on dev. A mix row also has its
weights ``mix_weights`` (over layers ``0..mix_upto``), ``gamma`` and their expected layer
``expected_layer`` (``E_s[l] = sum_l l s_l``); the mix of all layers (``mix_upto = L``) with
``mixes="cumulative"`` also has ``cumulative_expected_layer`` (``E_Delta[l]`` from the test
F1s of the mixes ``0..l``; ``dev_cumulative_expected_layer`` from the dev F1s).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..distribute import from_chief
from ..settings import ExtractionSettings
from .edge_config import EdgeSettings, edge_settings
from .edge_data import EDGE_TASKS, TASK_LABELS, edge_examples
from .prepare import ProbeTarget
from .results import EDGE_COLUMNS, EDGE_TABLE, ResultsFile, edge_row_order
from .runs import Log, ProbeRun, quiet, run_flags
from .specs import ModelSpec


@dataclass(frozen=True)
class EdgePlan:
    """The probes of one (model, task) run and the hidden states their batches hold.

    Attributes:
        states: the hidden-state indices read, in batch order.
        probes: per probe, the positions in ``states`` it reads.
        mix: per probe, whether it is a scalar mix.
        keys: per probe, its row's ``(layer, mix_upto)``: ``(k, None)`` or ``("mix", l)``.
    """

    states: tuple[int, ...]
    probes: tuple[tuple[int, ...], ...]
    mix: tuple[bool, ...]
    keys: tuple[tuple, ...]


def edge_plan(num_states: int, layers: Sequence[int], mixes: str) -> EdgePlan:
    """The single-layer probes of ``layers`` and the mixes of ``mixes`` on a model with
    ``num_states`` hidden states (``L + 1``).

    ``"cumulative"``: the mixes of layers ``0..l`` for ``l = 0..L``; ``"full"``: the mix of
    ``0..L`` only; ``"none"``: no mix.
    """
    top = num_states - 1
    uppers = {"cumulative": list(range(num_states)), "full": [top], "none": []}[mixes]
    wanted = set(int(k) for k in layers) | (set(range(num_states)) if uppers else set())
    states = tuple(sorted(wanted))
    pos = {k: i for i, k in enumerate(states)}
    probes = [(pos[int(k)],) for k in layers] + [tuple(range(pos[u] + 1)) for u in uppers]
    mix = [False] * len(layers) + [True] * len(uppers)
    keys = [(int(k), None) for k in layers] + [("mix", u) for u in uppers]
    return EdgePlan(states, tuple(probes), tuple(mix), tuple(keys))


def _done(results: ResultsFile, target: ProbeTarget, task: str, plan: EdgePlan) -> bool:
    have = {
        (r["layer"], r.get("mix_upto"))
        for r in results.rows
        if r["model"] == target.spec.label
        and r["task"] == task
        and r.get("model_fingerprint") == target.fingerprint
        and r.get("tokenizer_fingerprint") == target.tokenizer_fingerprint
    }
    return all(key in have for key in plan.keys)


def run_edge_probes(
    models: Sequence[str | None] | None,
    train: str | os.PathLike,
    dev: str | os.PathLike,
    test: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    settings: EdgeSettings | None = None,
    extraction: ExtractionSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
    log: Log | None = print,
    **options,
) -> list[dict]:
    """Train and evaluate POS and dependency-relation edge probes on every layer (and the
    scalar mixes) of every model.

    Args:
        models: model specs (hub name, folder, ``label=source``, or ``None`` for the offline
            default); default ``[None]``.
        train, dev, test: CoNLL-U files: train on ``train``, keep each probe's best ``dev``
            epoch, report on ``test`` (``None``: dev scores only).
        out: folder of ``results.json``/``.csv`` and ``figures/`` (an earlier version's
            ``edge_results.json`` there is continued).
        settings: what to train (:class:`~bert_repro.probe.edge_config.EdgeSettings`:
            layers, tasks, mixes, epochs, batch_size, seed, limit, too_long, figures, ...).
        extraction: how BERT runs (:class:`~bert_repro.settings.ExtractionSettings`), as for
            :func:`bert_repro.probe.sweep.run_sweep` (the same cache entries).
        cache_dir: feature cache folder (default :func:`bert_repro.probe.data.default_cache_dir`).
        log: progress lines (``None``: silent); ``verbose=True`` adds one line per probe and
            epoch.
        options: fields of either settings object, e.g. ``tasks=["pos"], epochs=5``;
            ``overwrite=True`` as for :func:`bert_repro.probe.sweep.run_sweep`.

    Returns:
        All result rows (including those of earlier, resumed runs), columns
        :data:`EDGE_COLUMNS` (and ``tokenizer_fingerprint``).

    Raises:
        ConfigError, DataError, ModelError: bad settings, treebanks (e.g. a label outside UD's
            inventory), models or layers; all checked before the first model is loaded.
    """
    verbose, overwrite = run_flags(options)
    settings, extraction = edge_settings(settings, extraction, **options)
    run = ProbeRun.open(
        models,
        {"train": train, "dev": dev, "test": test},
        out,
        settings,
        extraction,
        cache_dir=cache_dir,
        log=log or quiet,
        command="probe edge",
        table=EDGE_TABLE,
        overwrite=overwrite,
    )
    _check_labels(run, settings.tasks)
    for spec in run.specs:
        _edge_model(run, spec, settings, verbose)
    run.save_figures("edge", settings.figures)
    return run.results.rows


def _check_labels(run: ProbeRun, tasks: Sequence[str]) -> None:
    """Every split's labels are in UD's inventory: a bad one fails now, not after the
    features."""
    for ds in run.splits.values():
        for task in tasks:
            edge_examples(ds.sentences, task)


def _edge_model(run: ProbeRun, spec: ModelSpec, settings: EdgeSettings, verbose: bool) -> None:
    """Train and record the edge probes of one model's tasks that have no rows yet."""
    from .edge_rows import edge_row_line, edge_rows  # TensorFlow: only after the checks

    target = run.load(spec, "retraining its edge probes")
    layers = target.layers(settings.layers)
    plan = edge_plan(target.num_layers + 1, layers, settings.mixes)
    missing = [not _done(run.results, target, task, plan) for task in settings.tasks]
    missing = from_chief(run.extraction.strategy, np.array(missing, dtype=bool))  # all train
    todo = [task for task, m in zip(settings.tasks, missing, strict=True) if m]
    run.log(
        f"{spec.label}: {target.num_layers} layers, hidden {target.hidden}; edge tasks to "
        f"train: {', '.join(todo) or 'none'} ({len(plan.keys)} probes each)"
    )
    trains, strategy = run.ready(target, settings.too_long, todo)
    if not trains:
        return
    for task in todo:
        rows = edge_rows(target, task, plan, settings, run.log, verbose=verbose, strategy=strategy)
        run.record(rows, edge_row_line)


__all__ = [
    "EDGE_COLUMNS",
    "EDGE_TASKS",
    "EdgePlan",
    "TASK_LABELS",
    "edge_plan",
    "edge_row_order",
    "run_edge_probes",
]
