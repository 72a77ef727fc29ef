"""The table of a layer-ablation run: one row per (model, task, mode, direction, k, metric).

========================  ===========================================================
column                    meaning
========================  ===========================================================
``model``                 the fine-tuned model (restore) or base model (freeze) name
``task``                  the task (:func:`bert_repro.finetune.get_task`)
``mode``                  ``"restore"`` (base weights put back) or ``"freeze"``
``direction``             ``"bottom"`` or ``"top"`` (freeze: always ``"bottom"``)
``k``                     transformer layers restored / frozen, ``0..L``
``num_layers``            ``L``
``parts``                 the parts touched, ``"+"``-joined (``""`` for none)
``metric``                the task metric's name (``accuracy``, ``f1``, ...)
``value``                 its value
``n_examples``            evaluation examples (SQuAD: questions) behind the value
========================  ===========================================================

The reference levels (``levels``) are the fine-tuned model's metric (nothing restored) and the
base encoder's under the fine-tuned head (embeddings and every layer restored) for ``restore``;
for ``freeze``, the run with nothing frozen when it is among the ``k``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..errors import DataError
from ..io import SavesResults

Mode = Literal["restore", "freeze"]
MODES: tuple[str, ...] = ("restore", "freeze")
COLUMNS: tuple[str, ...] = (
    "model",
    "task",
    "mode",
    "direction",
    "k",
    "num_layers",
    "parts",
    "metric",
    "value",
    "n_examples",
)
LEVEL_COLUMNS: tuple[str, ...] = ("model", "task", "mode", "level", "metric", "value")


def metric_values(metrics: Mapping[str, Any]) -> tuple[dict[str, float], int | None]:
    """Split a task's ``evaluate`` output into its metrics and its example count.

    Keys starting with ``n_`` are counts (``n_examples``, SQuAD's ``n_questions``); the count
    reported is ``n_examples`` if present, else the first count. Every other numeric value is a
    metric.

    Returns:
        ``({metric: value}, n_examples or None)``.
    """
    counts = {k: int(v) for k, v in metrics.items() if k.startswith("n_")}
    values = {
        k: float(v)
        for k, v in metrics.items()
        if not k.startswith("n_") and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    n = counts.get("n_examples", next(iter(counts.values()), None))
    return values, n


def metric_rows(
    metrics: Mapping[str, Any],
    *,
    model: str,
    task: str,
    mode: Mode,
    direction: str,
    k: int,
    num_layers: int,
    parts: Sequence[str],
) -> list[dict]:
    """One row (:data:`COLUMNS`) per metric of one evaluation."""
    values, n = metric_values(metrics)
    return [
        {
            "model": model,
            "task": task,
            "mode": mode,
            "direction": direction,
            "k": int(k),
            "num_layers": int(num_layers),
            "parts": "+".join(parts),
            "metric": name,
            "value": value,
            "n_examples": n,
        }
        for name, value in values.items()
    ]


def level_rows(metrics: Mapping[str, Any], *, model: str, task: str, mode: Mode, level: str):
    """One row (:data:`LEVEL_COLUMNS`) per metric of a reference level."""
    values, _ = metric_values(metrics)
    return [
        {"model": model, "task": task, "mode": mode, "level": level, "metric": m, "value": v}
        for m, v in values.items()
    ]


@dataclass(frozen=True)
class AblationResult(SavesResults):
    """Task metric against ``k`` for layer restores and / or freezes.

    Attributes:
        rows: the table (module docstring), in run order.
        levels: reference levels (:data:`LEVEL_COLUMNS`; ``level`` is ``"finetuned"`` or
            ``"base"``).
        settings: what produced it (models, data, ``k``, timings).

    ``save(out)`` writes ``results.json`` (``rows``: the table; ``summary``: the levels),
    ``results.csv`` and one figure per mode and metric (``figures/restore_accuracy.html``, ...).
    """

    stem: ClassVar[str] = "results"

    rows: tuple[dict, ...]
    levels: tuple[dict, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def to_frame(self):
        """The rows as a ``pandas.DataFrame`` with the columns :data:`COLUMNS`."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=list(COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the ``summary`` of ``results.json`` (the rows are its ``rows``)."""
        return {"levels": [dict(r) for r in self.levels]}

    def _runs(self) -> list[dict]:
        """The settings of each ablation run (:meth:`combine` lists them under ``runs``; a
        freeze's own ``runs`` is a dict by ``k``)."""
        runs = self.settings.get("runs")
        return list(runs) if isinstance(runs, list) else [self.settings]

    @property
    def command(self) -> str:  # type: ignore[override]
        """``"ablate restore"``, ``"ablate freeze"`` or ``"ablate"`` (both combined)."""
        modes = {run.get("mode") for run in self._runs()}
        return f"ablate {modes.pop()}" if len(modes) == 1 and None not in modes else "ablate"

    def model_entries(self) -> dict[str, dict]:
        """``{name: {"path", "fingerprint"}}``: the base and the fine-tuned models."""
        from ..outputs import model_entry

        out: dict[str, dict] = {}
        for run in self._runs():
            base = run.get("base_path")
            out.setdefault("base", model_entry(base, fingerprint=run.get("base_fingerprint")))
            if run.get("finetuned"):
                out[run["model"]] = model_entry(
                    run["finetuned"], fingerprint=run.get("finetuned_fingerprint")
                )
        return out

    def value(
        self, *, mode: str, k: int, metric: str, direction: str = "bottom", model: str | None = None
    ) -> float:
        """The value of one cell (``model`` may be left out when there is one model)."""
        found = [
            r["value"]
            for r in self.rows
            if r["mode"] == mode
            and r["k"] == k
            and r["metric"] == metric
            and r["direction"] == direction
            and (model is None or r["model"] == model)
        ]
        if len(found) != 1:
            raise DataError(
                f"{len(found)} rows match mode={mode!r} direction={direction!r} k={k} "
                f"metric={metric!r} model={model!r} (give model= when there are several)"
            )
        return found[0]

    def figures(self) -> dict[str, Any]:
        """One figure per mode and metric: ``{"<mode>_<metric>": figure}``."""
        from .figures import ablation_figure

        keys = dict.fromkeys((r["mode"], r["metric"]) for r in self.rows)
        return {
            f"{mode}_{metric}": ablation_figure(self.rows, self.levels, metric=metric, mode=mode)
            for mode, metric in keys
        }

    @classmethod
    def combine(cls, results: Sequence[AblationResult]) -> AblationResult:
        """One result holding the rows and levels of several (their settings under ``runs``)."""
        return cls(
            rows=tuple(r for res in results for r in res.rows),
            levels=tuple(r for res in results for r in res.levels),
            settings={"runs": [dict(res.settings) for res in results]},
        )
