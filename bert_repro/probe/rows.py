"""Probes of one prepared model turned into result rows: trained (saved, scored on dev and
test) or loaded from a finished run and scored on a test set.

A row has the columns :data:`bert_repro.probe.results.COLUMNS`; the features come from the
model's :class:`~bert_repro.probe.prepare.ProbeTarget` (its cache, read one layer at a time).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import ConfigError
from .config import METRICS, SweepSettings
from .joint import train_probes
from .model import load_probe, save_probe
from .prepare import ProbeTarget
from .results import COLUMNS
from .specs import probe_dir
from .trainer import evaluate_probe

Log = Callable[[str], None]


def _row(target: ProbeTarget, layer: int, kind: str, rank: int, weights: Path) -> dict:
    row: dict = {m: None for m in COLUMNS}
    row.update(
        model=target.spec.label,
        layer=int(layer),
        kind=kind,
        rank=int(rank),
        model_fingerprint=target.fingerprint,
        tokenizer_fingerprint=target.tokenizer_fingerprint,
        weights=str(weights),
    )
    return row


def _score(probe, target: ProbeTarget, split: str, layer: int, kind: str, batch: int) -> dict:
    ds = target.splits[split]
    data = ds.tf_dataset(target.stores[split], layer, kind, batch_size=batch)
    return evaluate_probe(probe, kind, data, ds.labels(kind), ds.punctuation)


def train_rows(
    target: ProbeTarget,
    todo: Sequence[tuple[int, str]],
    settings: SweepSettings,
    out: str | os.PathLike,
    *,
    epoch_log: Log | None = None,
    strategy=None,
) -> Iterator[dict]:
    """Train the ``(layer, kind)`` probes of ``todo`` on the target's train split, all at once
    (:func:`bert_repro.probe.joint.train_probes`: one pass over each batch for every layer
    and kind, each probe as if trained alone, best dev epoch kept), save each under
    ``<out>/probes/<label>/<kind>-layer<k>/`` and yield its row with dev (and test) metrics.

    The layers and kinds of ``todo`` are trained as their full product (a resumed run whose
    finished probes leave holes trains a few extra ones, not kept). ``strategy``: train
    under it (:func:`~bert_repro.probe.joint.train_probes`; every worker of a multi-worker one
    calls this with the same arguments).
    """
    layers = list(dict.fromkeys(k for k, _ in todo))
    kinds = [kind for kind in settings.kinds if any(kind == kd for _, kd in todo)]
    rank = min(int(settings.rank), target.hidden)
    batches = {
        split: target.splits[split].layer_batches(
            target.stores[split],
            layers,
            kinds,
            batch_size=settings.batch_size,
            shuffle=split == "train",
            seed=settings.seed,
        )
        for split in ("train", "dev")
    }
    results = train_probes(
        kinds,
        layers,
        batches["train"],
        batches["dev"],
        model_dim=target.hidden,
        probe_rank=rank,
        seed=settings.seed,
        epochs=settings.epochs,
        log=epoch_log,
        log_prefix="    ",
        strategy=strategy,
    )
    for layer, kind in todo:
        yield _trained_row(target, (layer, kind, rank), results[layer, kind], settings, out)


def _trained_row(target: ProbeTarget, probe: tuple, result, settings, out) -> dict:
    """Save the trained probe ``(layer, kind, rank)`` under
    ``<out>/probes/<label>/<kind>-layer<k>/``; its row, with its training and its dev (and
    test) metrics."""
    layer, kind, rank = probe
    folder = probe_dir(out, target.spec.label, kind, layer)
    save_probe(result.probe, folder)
    row = _row(target, layer, kind, rank, folder / "model")
    row.update(
        dev_loss=result.dev_loss,
        epochs=result.epochs,
        best_epoch=result.best_epoch,
        train_seconds=round(result.seconds, 1),
    )
    for split in ("dev", "test"):
        if split in target.splits:
            metrics = _score(result.probe, target, split, layer, kind, settings.batch_size)
            for m, v in metrics.items():
                row[m if split == "test" else f"dev_{m}"] = float(v)
    return row


def evaluate_rows(
    target: ProbeTarget,
    layers: Sequence[int],
    kinds: Sequence[str],
    probes: str | os.PathLike,
    batch_size: int,
    log: Log,
) -> Iterator[dict]:
    """Score the probes saved under ``<probes>/probes/<label>/`` on the target's test split;
    a missing probe is reported through ``log`` and skipped."""
    for layer in layers:
        for kind in kinds:
            folder = probe_dir(probes, target.spec.label, kind, layer)
            weights = folder / "model"
            if not Path(str(weights) + ".index").exists():
                log(
                    f"  no {kind} probe for {target.spec.label} layer {layer} at {weights}; skipped"
                )
                continue
            probe = load_probe(folder, kind)
            if probe.model_dim != target.hidden:
                raise ConfigError(
                    f"the probe in {folder} reads {probe.model_dim}-d vectors but "
                    f"{target.spec.label} has {target.hidden}: it was trained on another model"
                )
            row = _row(target, layer, kind, probe.probe_rank, weights)
            metrics = _score(probe, target, "test", layer, kind, batch_size)
            row.update({m: float(v) for m, v in metrics.items()})
            yield row


def row_line(row: dict) -> str:
    """One progress line for a finished row: its test (else dev) metrics and training."""
    kind = row["kind"]
    shown = ", ".join(
        f"{m} {row[m]:.3f}" for m in METRICS[kind] if row.get(m) is not None
    ) or ", ".join(
        f"dev {m} {row[f'dev_{m}']:.3f}" for m in METRICS[kind] if row.get(f"dev_{m}") is not None
    )
    line = f"  {kind:8s} layer {row['layer']:2d}: {shown}"
    if row.get("dev_loss") is not None:
        line += f"; dev loss {row['dev_loss']:.4f}, {row['epochs']} epochs"
        line += f", {row['train_seconds']:.0f}s"
    return line
