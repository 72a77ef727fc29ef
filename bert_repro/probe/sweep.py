"""Probe every layer of one or more models: train on one treebank split, select on dev, report
on test; results as JSON and CSV, written after every probe so an interrupted sweep resumes.

For each model (:mod:`.prepare`): its word features for every hidden state are extracted once
per split into the feature cache; then for every layer ``k`` (0 = embedding output .. ``L``)
and probe kind (distance, depth) a probe is trained (:mod:`.rows`), its weights saved under
``<out>/probes/<model>/<kind>-layer<k>/``, and its metrics on dev (and test) written to
``<out>/results.json`` and ``<out>/results.csv`` (:mod:`.results`). An entry already in the
results (same model weights and tokenizer, layer, kind, rank) is skipped, so re-running the
same command continues where it stopped. Reuse is keyed on content: the results record the
SHA-256 of each treebank file, and when one differs on a rerun (or a model's weights or
tokenizer do) the rows that depend on it are dropped and recomputed, with a line that says so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..distribute import from_chief, is_chief
from ..errors import ConfigError
from ..io import check_out_dir
from ..settings import ExtractionSettings
from .config import METRICS, SweepSettings, sweep_settings  # noqa: F401 (METRICS re-exported)
from .prepare import ProbeTarget, check_models, load_splits, load_target
from .results import (  # noqa: F401  (ALL_METRICS, RESUME_SETTINGS, rows_to_csv: re-exported)
    ALL_METRICS,
    COLUMNS,
    EVALUATION_TABLE,
    RESUME_SETTINGS,
    ResultsFile,
    rows_to_csv,
    treebank_fingerprints,
)
from .runs import Log, ProbeRun, quiet, run_flags
from .saved import TrainedProbes
from .specs import (  # noqa: F401 (re-exported: the notebooks and older code import them here)
    DEFAULT_MODEL_LABEL,
    ModelSpec,
    model_specs,
    parse_model_spec,
    probe_dir,
    unique_specs,
)


def _todo(results: ResultsFile, target: ProbeTarget, settings: SweepSettings, strategy) -> list:
    """The ``(layer, kind)`` probes without a result yet: the chief's, on every worker (under
    multi-worker they train together: :func:`bert_repro.distribute.from_chief`)."""
    rank = min(int(settings.rank), target.hidden)
    probes = [(k, kind) for k in target.layers(settings.layers) for kind in settings.kinds]
    missing = [
        results.find(
            target.spec.label,
            target.fingerprint,
            k,
            kind,
            rank,
            tokenizer=target.tokenizer_fingerprint,
        )
        is None
        for k, kind in probes
    ]
    missing = from_chief(strategy, np.array(missing, dtype=bool))
    return [probe for probe, m in zip(probes, missing, strict=True) if m]


def run_sweep(
    models: Sequence[str | None] | None,
    train: str | os.PathLike,
    dev: str | os.PathLike,
    test: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    settings: SweepSettings | None = None,
    extraction: ExtractionSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
    log: Log | None = print,
    **options,
) -> list[dict]:
    """Train and evaluate distance and depth probes on every layer of every model.

    Args:
        models: model specs (hub name, folder, ``label=source``, or ``None`` for the offline
            default); default ``[None]``.
        train, dev, test: CoNLL-U files: train on ``train``, keep the best ``dev`` epoch,
            report on ``test`` (``None``: dev metrics only).
        out: folder of ``results.json``/``results.csv``, ``probes/`` and ``figures/``.
        settings: what to train (:class:`~bert_repro.probe.config.SweepSettings`: layers,
            kinds, rank, epochs, batch_size, seed, limit, too_long, figures).
        extraction: how BERT runs (:class:`~bert_repro.settings.ExtractionSettings`:
            precision, XLA, ``cache_dtype``, token budget, strategy, progress bars); a mixed
            precision changes the model's fingerprint, so its features and probes are kept
            apart from float32 ones.
        cache_dir: feature cache folder (default :func:`bert_repro.probe.data.default_cache_dir`).
        log: progress lines (``None``: silent); ``verbose=True`` adds one line per epoch.
        options: fields of either settings object, e.g. ``rank=64, cache_dtype="float16"``;
            ``overwrite=True`` deletes earlier results in ``out`` first (else they are
            continued when the settings match, refused when not:
            :func:`bert_repro.outputs.prepare_out`).

    Returns:
        All result rows (including those of earlier, resumed runs), columns :data:`COLUMNS`.

    Raises:
        ConfigError, DataError, ModelError: bad settings, treebanks, models or layers; all are
            checked before the first model is loaded (models from their configs only).
    """
    verbose, overwrite = run_flags(options)
    settings, extraction = sweep_settings(settings, extraction, **options)
    run = ProbeRun.open(
        models,
        {"train": train, "dev": dev, "test": test},
        out,
        settings,
        extraction,
        cache_dir=cache_dir,
        log=log or quiet,
        command="probe train" if test is None else "probe sweep",
        overwrite=overwrite,
    )
    for spec in run.specs:
        _sweep_model(run, spec, settings, verbose)
    run.save_figures("sweep", settings.figures)
    return run.results.rows


def _sweep_model(run: ProbeRun, spec: ModelSpec, settings: SweepSettings, verbose: bool) -> None:
    """Train and record the probes of one model that have no result yet."""
    from .rows import row_line, train_rows  # TensorFlow: only after the checks

    target = run.load(spec, "retraining its probes")
    todo = _todo(run.results, target, settings, run.extraction.strategy)
    n_all = len(target.layers(settings.layers)) * len(settings.kinds)
    run.log(
        f"{spec.label}: {target.num_layers} layers, hidden {target.hidden}; "
        f"{len(todo)} of {n_all} probes to train"
    )
    trains, strategy = run.ready(target, settings.too_long, todo)
    if not trains:
        return
    epoch_log = run.log if verbose else None
    run.record(
        train_rows(target, todo, settings, run.out, epoch_log=epoch_log, strategy=strategy),
        row_line,
    )


def evaluation_dir(out: str | os.PathLike, probes: str | os.PathLike) -> Path:
    """Where an evaluation's ``results.json`` goes: ``out``, or ``out/evaluation`` when ``out``
    is the probes' own run folder (whose ``results.json`` is the training run's)."""
    out = Path(out)
    return out / "evaluation" if out.resolve() == Path(probes).resolve() else out


def evaluate_saved(
    models: Sequence[str | None] | None,
    test: str | os.PathLike,
    probes: str | os.PathLike,
    out: str | os.PathLike,
    *,
    settings: SweepSettings | None = None,
    extraction: ExtractionSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
    log: Log | None = print,
    **options,
) -> list[dict]:
    """Evaluate probes saved by a sweep/train run (``<probes>/probes/<model>/...``) on a
    CoNLL-U file; write ``results.json``/``.csv`` into :func:`evaluation_dir` (``out``, or
    ``out/evaluation`` when ``out`` is ``probes``).

    ``settings``/``extraction``/``options``: as :func:`run_sweep` (``layers``, ``kinds``,
    ``batch_size``, ``limit``, ``too_long`` are used; each row records the probe's own rank).
    Probes missing for a (model, layer, kind) are reported and skipped. Probes trained on
    another model than the one given under their label are refused
    (:meth:`bert_repro.probe.saved.TrainedProbes.check_model`). Rows of an earlier
    evaluation into ``out`` are kept unless the test file's content or the model's weights or
    tokenizer changed since (then they are dropped, with a line that says so).
    """
    options.pop("rank", None)  # a saved probe has its own rank
    _, overwrite = run_flags(options)
    settings, extraction = sweep_settings(settings, extraction, **options)
    log = log or quiet
    out = evaluation_dir(out, probes)
    specs = model_specs(models)
    _check_folders(out, probes)
    trained = TrainedProbes.read(probes)
    record = {
        "models": [f"{s.label}={s.source}" for s in specs],
        "test": str(test),
        "probes": str(probes),
        "probe_ranks": trained.ranks(s.label for s in specs),
        "batch_size": settings.batch_size,
        "limit": settings.limit,
    }
    results = ResultsFile(
        out,
        record,
        command="probe evaluate",
        inputs=treebank_fingerprints({"test": test}),
        redo="re-evaluating",
        table=EVALUATION_TABLE,
        overwrite=overwrite,
    )
    for note in results.notes:
        log(note)
    splits = load_splits({"test": test}, settings.limit, cache_dir)
    check_models(specs, settings.layers)
    run = ProbeRun(out, tuple(specs), results, splits, extraction, log)
    for spec in specs:
        _evaluate_model(run, spec, trained, probes, settings)
    return results.rows


def _check_folders(out: Path, probes: str | os.PathLike) -> None:
    """Check that ``out`` can be written and ``probes`` holds a ``probes/`` folder."""
    check_out_dir(out)
    if not (Path(probes) / "probes").is_dir():
        raise ConfigError(
            f"{probes} holds no probes/ folder: give the --out folder of a train or sweep run"
        )


def _evaluate_model(
    run: ProbeRun,
    spec: ModelSpec,
    trained: TrainedProbes,
    probes: str | os.PathLike,
    settings: SweepSettings,
) -> None:
    """Score one model's saved probes on the test split and record the rows (the chief)."""
    from .rows import evaluate_rows, row_line  # TensorFlow: only after the checks

    target = load_target(spec, run.extraction)
    trained.check_model(spec.label, spec.source, target.fingerprint)
    run.adopt(target, "re-evaluating")
    target.features(run.splits, settings.too_long, run.extraction, run.log)
    if not is_chief(run.extraction.strategy):
        return  # another worker helped extract; the chief evaluates
    layers = target.layers(settings.layers)
    for row in evaluate_rows(target, layers, settings.kinds, probes, settings.batch_size, run.log):
        run.results.add(row)
        run.log(row_line(row))
