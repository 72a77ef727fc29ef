"""What every probe command (sweep, train, evaluate, edge) does around its models, once.

A run (:class:`ProbeRun`) opens its results file (:func:`bert_repro.probe.results.open_run`),
reads the treebanks (:func:`~bert_repro.probe.prepare.load_splits`) and checks every model from
its config (:func:`~bert_repro.probe.prepare.check_models`) before any weights load. Then, per
model, :meth:`ProbeRun.load` loads it, records it in the results and drops the rows an earlier
version of it made (:meth:`ProbeRun.adopt`); :meth:`ProbeRun.ready` filters the splits, extracts their word features
(from the cache when there) and says whether this process trains and under which strategy; and
at the end :meth:`ProbeRun.save_figures` writes the figures (on the chief only).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..distribute import is_chief
from ..settings import ExtractionSettings
from .data import ProbeDataset
from .prepare import ProbeTarget, check_models, load_splits, load_target
from .results import ResultsFile, open_run
from .specs import ModelSpec, model_specs

Log = Callable[[str], None]


def quiet(_line: str) -> None:
    """A ``log`` that prints nothing."""
    return None


def run_flags(options: dict) -> tuple[bool, bool]:
    """``(verbose, overwrite)`` taken out of a run's keyword ``options`` (the rest are
    settings fields)."""
    return bool(options.pop("verbose", False)), bool(options.pop("overwrite", False))


@dataclass(frozen=True)
class ProbeRun:
    """An opened probe run: its models, results file, treebank splits, extraction settings.

    Attributes:
        out: the output folder (as the caller gave it: the log lines name it so).
        specs: the models, in order.
        results: the run's :class:`~bert_repro.probe.results.ResultsFile`.
        splits: ``{split: dataset}``, the first ``limit`` sentences of each treebank.
        extraction: how the models run (its ``strategy`` also decides who trains).
        log: progress lines.
    """

    out: str | os.PathLike
    specs: tuple[ModelSpec, ...]
    results: ResultsFile
    splits: Mapping[str, ProbeDataset]
    extraction: ExtractionSettings
    log: Log

    @classmethod
    def open(
        cls,
        models: Sequence[str | None] | None,
        paths: Mapping[str, str | os.PathLike | None],
        out: str | os.PathLike,
        settings,
        extraction: ExtractionSettings,
        *,
        cache_dir: str | os.PathLike | None,
        log: Log,
        **open_options,
    ) -> ProbeRun:
        """Open the results in ``out`` (``open_options``: :func:`open_run`'s ``command``,
        ``table``, ``overwrite``), read the treebanks of ``paths`` (``None`` ones left out) and
        check every model from its config, in that order; nothing is loaded yet."""
        specs = model_specs(models)
        results = open_run(out, specs, paths, settings, extraction, log=log, **open_options)
        splits = load_splits(paths, settings.limit, cache_dir)
        check_models(specs, settings.layers)
        return cls(out, tuple(specs), results, splits, extraction, log)

    def load(self, spec: ModelSpec, redo: str) -> ProbeTarget:
        """Load ``spec``'s model and :meth:`adopt` it."""
        target = load_target(spec, self.extraction)
        self.adopt(target, redo)
        return target

    def adopt(self, target: ProbeTarget, redo: str) -> None:
        """Record ``target`` in the results and drop the rows its earlier weights or
        tokenizer made, saying so and that it means ``redo``."""
        note = self.results.start_model(target, self.out, redo)
        if note:
            self.log(note)

    def ready(self, target: ProbeTarget, too_long: str, todo: Sequence) -> tuple[bool, object]:
        """``(trains, strategy)`` for ``target``'s ``todo`` probes: ``(False, None)`` when there
        are none (nothing extracted); else the splits filtered and their features extracted
        (:meth:`~bert_repro.probe.prepare.ProbeTarget.features`), then whether this process
        trains and under which strategy
        (:meth:`~bert_repro.probe.prepare.ProbeTarget.training_strategy`; every worker of a
        multi-worker strategy calls this)."""
        if not todo:
            return False, None
        target.features(self.splits, too_long, self.extraction, self.log)
        return target.training_strategy(self.extraction.strategy, self.log)

    def record(self, rows: Iterable[dict], line: Callable[[dict], str]) -> None:
        """Add each row to the results file as it comes (a killed run keeps the rows already
        finished) and log its ``line``."""
        for row in rows:
            self.results.add(row)
            self.log(line(row))

    def save_figures(self, kind: Literal["sweep", "edge"], wanted: bool = True) -> None:
        """On the chief, when ``wanted`` and there are rows: the run's figures
        (:func:`~bert_repro.probe.figures.save_sweep_figures` or
        :func:`~bert_repro.probe.figures.save_edge_figures`) in ``<out>/figures``, each
        written path logged."""
        if not (wanted and self.results.rows and is_chief(self.extraction.strategy)):
            return
        from . import figures  # plotly: only when there are figures to write

        save = figures.save_sweep_figures if kind == "sweep" else figures.save_edge_figures
        for path in save(self.results.rows, Path(self.out) / "figures"):
            self.log(f"wrote {path}")
