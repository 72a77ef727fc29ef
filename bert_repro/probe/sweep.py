"""Probe every layer of one or more models: train on one treebank split, select on dev, report
on test; results as JSON and CSV, written after every probe so an interrupted sweep resumes.

For each model: its word features for every hidden state are extracted once per split into the
feature cache; then for every layer ``k`` (0 = embedding output .. ``L``) and probe kind
(distance, depth) a probe is trained (:func:`bert_repro.probe.trainer.train_probe`), its
weights saved under ``<out>/probes/<model>/<kind>-layer<k>/``, and its metrics on dev (and
test) appended to ``<out>/results.json`` and ``<out>/results.csv``. An entry already in the
results (same model weights and tokenizer, layer, kind, rank) is skipped, so re-running the
same command continues where it stopped. Reuse is keyed on content: the results record the
SHA-256 of each treebank file, and when one differs on a rerun (or a model's weights or
tokenizer do) the rows that depend on it are dropped and recomputed, with a line that says so.
"""

from __future__ import annotations

import gc
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, check_choice, check_positive
from ..io import check_out_dir
from ..models import PRECISIONS
from .data import ProbeDataset
from .kinds import PROBE_KINDS
from .layers import unique_layers
from .results import (  # noqa: F401  (ALL_METRICS, RESUME_SETTINGS, rows_to_csv: re-exported)
    ALL_METRICS,
    COLUMNS,
    RESUME_SETTINGS,
    ResultsFile,
    input_fingerprints,
    rows_to_csv,
)
from .saved import TrainedProbes

METRICS = {"distance": ("uuas", "dspr"), "depth": ("root_acc", "nspr")}
DEFAULT_MODEL_LABEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ModelSpec:
    """A model to probe: ``label`` names it in results and folders; ``source`` is what
    :func:`bert_repro.models.load_bert` loads (``None`` = the offline default)."""

    label: str
    source: str | None


def parse_model_spec(text: str | None) -> ModelSpec:
    """``None``/``"default"`` -> the offline default; ``"label=path_or_name"`` sets the label;
    otherwise the label is the folder's or hub name's last part."""
    if text is None or text == "default":
        return ModelSpec(DEFAULT_MODEL_LABEL, None)
    if "=" in text and not Path(text).exists():
        label, source = text.split("=", 1)
        return ModelSpec(_safe(label), None if source in ("", "default") else source)
    return ModelSpec(_safe(Path(text.rstrip("/")).name or text), text)


def _safe(label: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", label).strip("._")
    if not safe:
        raise ConfigError(f"model label {label!r} has no usable characters")
    return safe


def unique_specs(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """Make labels unique (``name``, ``name-2``, ...) keeping order."""
    seen: dict[str, int] = {}
    out = []
    for s in specs:
        n = seen.get(s.label, 0) + 1
        seen[s.label] = n
        out.append(s if n == 1 else ModelSpec(f"{s.label}-{n}", s.source))
    return out


def probe_dir(out: str | os.PathLike, label: str, kind: str, layer: int) -> Path:
    """``<out>/probes/<label>/<kind>-layer<k>``; the weights are ``<that>/model`` (a TF
    checkpoint: ``probe.load_weights(<that>/model)``)."""
    return Path(out) / "probes" / label / f"{kind}-layer{layer}"


def _load_split(path, limit, cache_dir) -> ProbeDataset | None:
    if path is None:
        return None
    ds = ProbeDataset(path, cache_dir=cache_dir)
    return ds.subset(range(min(limit, len(ds)))) if limit else ds


def _drop_too_long(ds: ProbeDataset, model, tokenizer, skip: bool, say) -> ProbeDataset:
    if not skip:
        return ds  # ProbeDataset.features refuses too-long sentences
    bad = set(ds.too_long(model, tokenizer))
    if not bad:
        return ds
    for i in sorted(bad):
        s = ds.sentences[i]
        say(f"  skipping too-long sentence {s.sent_id or i} ({s.path}:{s.start_line})")
    return ds.subset([i for i in range(len(ds)) if i not in bad])


def _check_models(specs: Sequence[ModelSpec], layers) -> None:
    """Every model exists and has the layers asked for: checked from the configs (no weights
    loaded), so a bad last model or layer fails now, not hours into the sweep."""
    from ..features import resolve_layers
    from ..models import model_config

    for spec in specs:
        config = model_config(spec.source)
        try:
            resolve_layers(layers, int(config.num_hidden_layers) + 1)
        except ConfigError as err:
            raise ConfigError(f"model {spec.label}: {err}") from None


def run_sweep(
    models: Sequence[str | None] | None,
    train: str | os.PathLike,
    dev: str | os.PathLike,
    test: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    layers: Sequence[int] | None = None,
    kinds: Sequence[str] = PROBE_KINDS,
    rank: int = 128,
    epochs: int = 40,
    batch_size: int = 20,
    seed: int = 0,
    limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_dtype: str = "float32",
    precision: str = "float32",
    jit_compile: bool = False,
    skip_too_long: bool = False,
    figures: bool = True,
    print_fn: Callable[[str], None] | None = print,
    verbose: bool = False,
) -> list[dict]:
    """Train and evaluate distance and depth probes on every layer of every model.

    Args:
        models: model specs (hub name, folder, ``label=source``, or ``None`` for the offline
            default); default ``[None]``.
        train, dev, test: CoNLL-U files: train on ``train``, keep the best ``dev`` epoch,
            report on ``test`` (``None``: dev metrics only).
        out: folder of ``results.json``/``results.csv``, ``probes/`` and ``figures/``.
        layers: hidden-state indices (0 = embedding output; negative from the top); default all.
        kinds: probe kinds, ``"distance"`` and/or ``"depth"``.
        rank: probe rank (clipped to the model's width).
        epochs, batch_size, seed: training settings (see :func:`train_probe`).
        limit: use only the first ``limit`` sentences of each split (quick runs).
        cache_dir: feature cache folder (default :func:`bert_repro.probe.data.default_cache_dir`).
        cache_dtype: ``"float32"`` or ``"float16"`` word features on disk (half the disk and
            mapped memory; metrics move within seed noise, docs/performance.md).
        precision, jit_compile: how BERT runs (see :func:`bert_repro.models.load_bert` and
            :func:`bert_repro.features.hidden_states`); a mixed precision changes the model's
            fingerprint, so its features and probes are kept apart from float32 ones.
        skip_too_long: drop (and list) sentences longer than the model allows instead of
            failing.
        figures: write metric-vs-layer figures at the end.
        print_fn: progress lines (``None``: silent); verbose: also one line per epoch.

    Returns:
        All result rows (including those of earlier, resumed runs), columns :data:`COLUMNS`.

    Raises:
        ConfigError, DataError, ModelError: bad settings, treebanks, models or layers; all are
            checked before the first model is loaded (models from their configs only).
    """
    from ..models import load_bert, model_dims, model_fingerprint, tokenizer_fingerprint

    for kind in kinds:
        check_choice("kind", kind, PROBE_KINDS)
    if rank < 1:
        raise ConfigError(f"rank must be at least 1, got {rank}")
    check_positive("epochs", epochs)
    check_positive("batch_size", batch_size)
    check_positive("limit", limit, optional=True)
    check_choice("cache_dtype", cache_dtype, ("float32", "float16"))
    check_choice("precision", precision, PRECISIONS)
    check_out_dir(out)
    say = print_fn or (lambda _msg: None)
    specs = unique_specs([parse_model_spec(m) for m in (models or [None])])
    settings = {
        "models": [f"{s.label}={s.source}" for s in specs],
        "cache_dtype": cache_dtype,
        "precision": precision,
        "train": str(train),
        "dev": str(dev),
        "test": None if test is None else str(test),
        "layers": None if layers is None else [int(k) for k in layers],
        "kinds": list(kinds),
        "rank": int(rank),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "limit": limit,
    }
    split_paths = {"train": train, "dev": dev, "test": test}
    results = ResultsFile(out, settings, inputs=input_fingerprints(split_paths))
    for note in results.notes:
        say(note)
    base = {name: _load_split(path, limit, cache_dir) for name, path in split_paths.items()}
    _check_models(specs, layers)
    from .trainer import evaluate_probe, train_probe  # TensorFlow: only after the checks

    for spec in specs:
        t0 = time.monotonic()
        model, tokenizer = load_bert(spec.source, precision=precision)
        num_layers, hidden = model_dims(model)
        fingerprint = model_fingerprint(model)
        tok_fingerprint = tokenizer_fingerprint(tokenizer)
        if results.drop_other_versions(spec.label, fingerprint, tok_fingerprint):
            say(
                f"model {spec.label} (weights or tokenizer) changed since the results in {out} "
                "were made: retraining its probes"
            )
        chosen = unique_layers(layers, num_layers + 1)
        r = min(int(rank), hidden)
        todo = [
            (k, kind)
            for k in chosen
            for kind in kinds
            if results.find(spec.label, fingerprint, k, kind, r, tokenizer=tok_fingerprint) is None
        ]
        say(
            f"{spec.label}: {num_layers} layers, hidden {hidden}; "
            f"{len(todo)} of {len(chosen) * len(kinds)} probes to train"
        )
        if not todo:
            continue
        splits = {
            name: _drop_too_long(ds, model, tokenizer, skip_too_long, say)
            for name, ds in base.items()
            if ds is not None
        }
        stores = {}
        for name, ds in splits.items():
            say(f"  features of {name} ({len(ds)} sentences)")
            stores[name] = ds.features(
                model,
                tokenizer,
                dtype=cache_dtype,
                jit_compile=jit_compile,
                progress=print_fn is not None,
            )
        say(f"  features ready ({time.monotonic() - t0:.0f}s)")
        # The probes read the cache only: free the encoder (bert-base: 0.4 GB) before them.
        del model, tokenizer
        gc.collect()
        for k, kind in todo:
            row = _probe_one(
                spec.label,
                fingerprint,
                k,
                kind,
                r,
                hidden,
                splits,
                stores,
                out,
                epochs=epochs,
                batch_size=batch_size,
                seed=seed,
                train_probe=train_probe,
                evaluate_probe=evaluate_probe,
                epoch_print=say if verbose else None,
                tokenizer_fingerprint=tok_fingerprint,
            )
            results.add(row)
            shown = ", ".join(
                f"{m} {row[m]:.3f}" for m in METRICS[kind] if row.get(m) is not None
            ) or ", ".join(f"dev {m} {row[f'dev_{m}']:.3f}" for m in METRICS[kind])
            say(
                f"  {kind:8s} layer {k:2d}: {shown}; dev loss {row['dev_loss']:.4f}, "
                f"{row['epochs']} epochs, {row['train_seconds']:.0f}s"
            )
        del stores
    if figures and results.rows:
        from .figures import save_sweep_figures

        for path in save_sweep_figures(results.rows, Path(out) / "figures"):
            say(f"wrote {path}")
    return results.rows


def _probe_one(
    label,
    fingerprint,
    layer,
    kind,
    rank,
    hidden,
    splits,
    stores,
    out,
    *,
    epochs,
    batch_size,
    seed,
    train_probe,
    evaluate_probe,
    epoch_print,
    tokenizer_fingerprint=None,
) -> dict:
    """Train one probe, save it, evaluate it on dev (and test); return its results row."""
    from .model import save_probe

    train_ds = splits["train"].tf_dataset(
        stores["train"], layer, kind, batch_size=batch_size, shuffle=True, seed=seed
    )
    dev_ds = splits["dev"].tf_dataset(stores["dev"], layer, kind, batch_size=batch_size)
    result = train_probe(
        kind,
        train_ds,
        dev_ds,
        model_dim=hidden,
        probe_rank=rank,
        seed=seed,
        epochs=epochs,
        print_fn=epoch_print,
        log_prefix=f"    {kind} layer {layer} ",
    )
    folder = probe_dir(out, label, kind, layer)
    save_probe(result.probe, folder)
    row: dict = {m: None for m in COLUMNS}
    row.update(
        model=label,
        layer=int(layer),
        kind=kind,
        rank=int(rank),
        dev_loss=result.dev_loss,
        epochs=result.epochs,
        best_epoch=result.best_epoch,
        train_seconds=round(result.seconds, 1),
        model_fingerprint=fingerprint,
        tokenizer_fingerprint=tokenizer_fingerprint,
        weights=str(folder / "model"),
    )
    for split in ("dev", "test"):
        if split not in splits:
            continue
        ds = splits[split]
        data = ds.tf_dataset(stores[split], layer, kind, batch_size=batch_size)
        metrics = evaluate_probe(result.probe, kind, data, ds.labels(kind), ds.punctuation)
        for m, v in metrics.items():
            row[m if split == "test" else f"dev_{m}"] = float(v)
    return row


def evaluate_saved(
    models: Sequence[str | None] | None,
    test: str | os.PathLike,
    probes: str | os.PathLike,
    out: str | os.PathLike,
    *,
    layers: Sequence[int] | None = None,
    kinds: Sequence[str] = PROBE_KINDS,
    rank: int = 128,
    batch_size: int = 20,
    limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_dtype: str = "float32",
    precision: str = "float32",
    jit_compile: bool = False,
    skip_too_long: bool = False,
    print_fn: Callable[[str], None] | None = print,
) -> list[dict]:
    """Evaluate probes saved by a sweep/train run (``<probes>/probes/<model>/...``) on a
    CoNLL-U file; write ``<out>/evaluation.json``/``.csv``.

    Probes missing for a (model, layer, kind) are reported and skipped. Each row records the
    probe's own rank; ``rank`` is not used (kept for callers that pass it). Probes trained on
    another model than the one given under their label are refused
    (:meth:`bert_repro.probe.saved.TrainedProbes.check_model`). Rows of an earlier
    evaluation into ``out`` are kept unless the test file's content or the model's weights or
    tokenizer changed since (then they are dropped, with a line that says so).
    """
    from ..models import load_bert, model_dims, model_fingerprint, tokenizer_fingerprint

    for kind in kinds:
        check_choice("kind", kind, PROBE_KINDS)
    check_positive("batch_size", batch_size)
    check_positive("limit", limit, optional=True)
    check_out_dir(out)
    if not (Path(probes) / "probes").is_dir():
        raise ConfigError(
            f"{probes} holds no probes/ folder: give the --out folder of a train or sweep run"
        )
    say = print_fn or (lambda _msg: None)
    specs = unique_specs([parse_model_spec(m) for m in (models or [None])])
    trained = TrainedProbes.read(probes)
    settings = {
        "models": [f"{s.label}={s.source}" for s in specs],
        "test": str(test),
        "probes": str(probes),
        "probe_ranks": trained.ranks(s.label for s in specs),
        "batch_size": int(batch_size),
        "limit": limit,
    }
    inputs = input_fingerprints({"test": test})
    results = ResultsFile(out, settings, name="evaluation", inputs=inputs, redo="re-evaluating")
    for note in results.notes:
        say(note)
    base = _load_split(test, limit, cache_dir)
    _check_models(specs, layers)
    check_choice("precision", precision, PRECISIONS)
    from .model import load_probe  # TensorFlow: only after the checks
    from .trainer import evaluate_probe

    for spec in specs:
        model, tokenizer = load_bert(spec.source, precision=precision)
        num_layers, hidden = model_dims(model)
        fingerprint = model_fingerprint(model)
        trained.check_model(spec.label, spec.source, fingerprint)
        tok_fingerprint = tokenizer_fingerprint(tokenizer)
        if results.drop_other_versions(spec.label, fingerprint, tok_fingerprint):
            say(
                f"model {spec.label} (weights or tokenizer) changed since the results in {out} "
                "were made: re-evaluating"
            )
        ds = _drop_too_long(base, model, tokenizer, skip_too_long, say)
        store = ds.features(
            model,
            tokenizer,
            dtype=cache_dtype,
            jit_compile=jit_compile,
            progress=print_fn is not None,
        )
        for k in unique_layers(layers, num_layers + 1):
            for kind in kinds:
                folder = probe_dir(probes, spec.label, kind, k)
                weights = folder / "model"
                if not Path(str(weights) + ".index").exists():
                    say(f"  no {kind} probe for {spec.label} layer {k} at {weights}; skipped")
                    continue
                probe = load_probe(folder, kind)
                if probe.model_dim != hidden:
                    raise ConfigError(
                        f"the probe in {folder} reads {probe.model_dim}-d vectors but "
                        f"{spec.label} has {hidden}: it was trained on another model"
                    )
                data = ds.tf_dataset(store, k, kind, batch_size=batch_size)
                metrics = evaluate_probe(probe, kind, data, ds.labels(kind), ds.punctuation)
                row: dict = {m: None for m in COLUMNS}
                row.update(
                    model=spec.label,
                    layer=int(k),
                    kind=kind,
                    rank=probe.probe_rank,
                    model_fingerprint=fingerprint,
                    tokenizer_fingerprint=tok_fingerprint,
                    weights=str(weights),
                    **{m: float(v) for m, v in metrics.items()},
                )
                results.add(row)
                say(
                    f"  {kind:8s} layer {k:2d}: "
                    + ", ".join(f"{m} {v:.3f}" for m, v in metrics.items())
                )
    return results.rows
