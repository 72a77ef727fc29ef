"""The numbers the paper's claims are checked on (:mod:`.claims`), as one small explicit object.

:class:`ClaimInputs` holds only plain data: the layer-wise similarity curves, the probe rows
and the ablation rows of a run, which fine-tuned model did which task, and which text is in
domain for which model. :func:`claim_inputs` builds it from a reproduction's
``results.json``; tests build it from synthetic numbers.

Row schemas (one dict per row; other keys are ignored):

- structural probes (``results["probes"]``, :data:`bert_repro.probe.results.COLUMNS`):
  ``{model, layer: int, kind: "distance"|"depth", uuas, dspr, root_acc, nspr}``;
- edge probes (``results["edge_probes"]``): ``{model, task: "pos"|"deprel",
  layer: int|"mix", f1, n}``;
- layer ablations (``results["ablations"]``): ``{model, task, mode: "restore"|"freeze",
  direction: "bottom"|"top", k, metric, value, n_examples}`` (``k = 0``: nothing ablated);
- similarity (``results["compare"][source]["models"]``): ``{model: {"cosine": [L+1 floats],
  "rsa": [...] | None, "cka": [...] | None}}``, layer 0 being the embedding output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: ``results.json`` keys of the steps that are wired in later (edge probes, ablations).
EDGE_KEY = "edge_probes"
ABLATION_KEY = "ablations"

#: Task names of the dependency-parsing fine-tune (the paper's third task). It is added to
#: the fine-tuning tasks apart from this module, so the usual spellings are all accepted.
PARSER_TASKS: tuple[str, ...] = ("parse", "parser", "parsing", "dep", "deps", "dependency")


def is_parser(task: str | None) -> bool:
    """Whether ``task`` names the dependency-parsing fine-tune (:data:`PARSER_TASKS`)."""
    return task is not None and str(task).lower() in PARSER_TASKS


def finite(value: object) -> bool:
    """A real number that is neither NaN nor infinite (``None`` and strings are not)."""
    return (
        isinstance(value, (int, float, np.number))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


@dataclass(frozen=True)
class ClaimInputs:
    """A run's numbers, as the claim checks read them.

    Attributes:
        base: the base model's label in the probe rows (``base_label`` of the run).
        tasks: ``{fine-tuned model: task}`` (e.g. ``{"squad": "squad", "ewt": "parse"}``).
        similarity: ``{text source: {fine-tuned model: {"cosine"|"rsa"|"cka": (L+1,) list
            or None}}}``: similarity to the base per hidden state, layer 0 the embeddings.
        structural: structural-probe rows (schema in the module docstring).
        edge: edge-probe rows.
        ablations: layer-ablation rows.
        in_domain: ``{fine-tuned model: (text sources in its task's domain, ...)}``.
        finetune_metrics: ``{fine-tuned model: {metric: value}}`` on held-out data (the
            reference of an ablation when its rows have no ``k = 0``).
        num_layers: ``L``, the transformer layers (``None``: read off the curves or rows).
    """

    base: str | None = None
    tasks: Mapping[str, str] = field(default_factory=dict)
    similarity: Mapping[str, Mapping[str, Mapping[str, Sequence[float] | None]]] = field(
        default_factory=dict
    )
    structural: Sequence[Mapping] = ()
    edge: Sequence[Mapping] = ()
    ablations: Sequence[Mapping] = ()
    in_domain: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    finetune_metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    num_layers: int | None = None

    @property
    def finetuned(self) -> tuple[str, ...]:
        """The fine-tuned models, in the order of :attr:`tasks`."""
        return tuple(self.tasks)

    @property
    def parsers(self) -> tuple[str, ...]:
        """The fine-tuned models whose task is dependency parsing."""
        return tuple(m for m, t in self.tasks.items() if is_parser(t))

    def layers(self) -> int | None:
        """``L``: :attr:`num_layers`, else the length of a similarity curve minus one, else
        the highest integer layer of a probe row; ``None`` when nothing says."""
        if self.num_layers is not None:
            return int(self.num_layers)
        for models in self.similarity.values():
            for metrics in models.values():
                for values in metrics.values():
                    if values:
                        return len(values) - 1
        layers = [
            int(r["layer"])
            for r in (*self.structural, *self.edge)
            if isinstance(r.get("layer"), (int, np.integer))
        ]
        return max(layers) if layers else None

    def curve(self, source: str, model: str, metric: str = "cka") -> np.ndarray | None:
        """The ``(L+1,)`` curve of ``metric`` for ``model`` on ``source``, or ``None`` when it
        is missing or holds a non-finite value."""
        values = self.similarity.get(source, {}).get(model, {}).get(metric)
        if not values or not all(finite(v) for v in values):
            return None
        return np.asarray(values, dtype=float)


def claim_inputs(results: Mapping) -> ClaimInputs:
    """The :class:`ClaimInputs` of a reproduction's ``results.json`` (as a dict).

    The fine-tuned models and their tasks come from the run's settings' ``finetune`` jobs
    (``meta["settings"]``, or the top level of an earlier version's file) and its
    ``finetune`` results; the in-domain texts from the settings' ``texts``
    (``in_domain_for``); the base model's label from ``base_label``. Steps that did not run
    leave their part empty.
    """
    meta = results.get("meta") if isinstance(results.get("meta"), Mapping) else results
    settings = meta.get("settings", {}) or {}  # an earlier version kept them at the top
    finetune = results.get("finetune", {}) or {}
    tasks = {job["name"]: job["task"] for job in settings.get("finetune", []) or []}
    for name, rec in finetune.items():
        tasks.setdefault(name, rec.get("task"))
    in_domain: dict[str, tuple[str, ...]] = {}
    for source in settings.get("texts", []) or []:
        for model in source.get("in_domain_for", []) or []:
            in_domain[model] = (*in_domain.get(model, ()), source["name"])
    return ClaimInputs(
        base=settings.get("base_label"),
        tasks=tasks,
        similarity={
            source: result.get("models", {})
            for source, result in (results.get("compare", {}) or {}).items()
        },
        structural=tuple(results.get("probes", []) or []),
        edge=tuple(results.get(EDGE_KEY, []) or []),
        ablations=tuple(results.get(ABLATION_KEY, []) or []),
        in_domain=in_domain,
        finetune_metrics={name: dict(rec.get("metrics", {})) for name, rec in finetune.items()},
    )
