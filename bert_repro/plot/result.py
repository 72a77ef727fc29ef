"""The outcome of a layer-wise comparison: per model, per layer cosine, RSA and CKA."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import DataError
from ..io import SavesResults
from .figures import METRICS, layer_similarity_figure, overview_figure


@dataclass(frozen=True)
class ComparisonResult(SavesResults):
    """Similarity of a base model to each compared model, layer by layer.

    Attributes:
        names: the compared (fine-tuned) models' names, in order ``M``.
        cosine: ``(M, L+1)`` token-averaged cosine similarity (see
            :meth:`BertComparator.compare`); layer 0 is the embedding output.
        rsa: ``(M, L+1)`` RSA on the token sample, or None when no sample was taken.
        cka: ``(M, L+1)`` linear CKA on the token sample, or None.
        n_texts: texts that entered the cosine average.
        n_tokens: wordpieces that entered it (over all those texts).
        n_sampled_tokens: size of the token sample behind RSA and CKA.
        n_skipped_too_long: texts left out because they exceed the model's maximum length
            (only with ``too_long="skip"``).
        n_without_tokens: texts with no counted wordpiece (left out of the average).
        settings: the options that produced this result.
    """

    stem: ClassVar[str] = "similarity"
    command: ClassVar[str] = "compare"

    names: tuple[str, ...]
    cosine: np.ndarray
    rsa: np.ndarray | None = None
    cka: np.ndarray | None = None
    n_texts: int = 0
    n_tokens: int = 0
    n_sampled_tokens: int = 0
    n_skipped_too_long: int = 0
    n_without_tokens: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        """Number of hidden-state tensors ``L + 1``."""
        return int(self.cosine.shape[1])

    def metric(self, metric: str, name: str | None = None) -> np.ndarray:
        """``(L+1,)`` values of ``metric`` for the model ``name`` (default: the first)."""
        values = getattr(self, metric, None) if metric in METRICS else None
        if values is None:
            raise DataError(f"this result holds no {metric!r} values (valid: {METRICS})")
        i = 0 if name is None else self._index(name)
        return np.array(values[i])

    def _index(self, name: str) -> int:
        if name not in self.names:
            raise DataError(f"no model named {name!r}; the result has {list(self.names)}")
        return self.names.index(name)

    def to_frame(self):
        """A ``pandas.DataFrame`` with one row per model and layer.

        Columns: ``model``, ``layer``, ``cosine``, ``rsa``, ``cka`` (NaN where not computed).
        """
        import pandas as pd

        rows = []
        for i, name in enumerate(self.names):
            for layer in range(self.num_layers):
                rows.append(
                    {
                        "model": name,
                        "layer": layer,
                        "cosine": float(self.cosine[i, layer]),
                        "rsa": np.nan if self.rsa is None else float(self.rsa[i, layer]),
                        "cka": np.nan if self.cka is None else float(self.cka[i, layer]),
                    }
                )
        return pd.DataFrame(rows, columns=["model", "layer", *METRICS])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (the ``summary`` of ``results.json``; the settings are in its
        ``meta``): per model the per-layer lists, plus counts."""
        models = {}
        for i, name in enumerate(self.names):
            models[name] = {
                m: None if getattr(self, m) is None else getattr(self, m)[i].tolist()
                for m in METRICS
            }
        return {
            "models": models,
            "n_texts": self.n_texts,
            "n_tokens": self.n_tokens,
            "n_sampled_tokens": self.n_sampled_tokens,
            "n_skipped_too_long": self.n_skipped_too_long,
            "n_without_tokens": self.n_without_tokens,
        }

    def figure(self, metric: str = "cosine", *, title: str | None = None):
        """Plotly line figure of ``metric`` vs layer, one line per model."""
        return layer_similarity_figure(self.to_frame(), metric, title=title)

    def overview_figure(self, *, title: str | None = None):
        """Plotly figure with a panel per available metric."""
        return overview_figure(self.to_frame(), title=title)

    def figures(self) -> dict[str, Any]:
        """One figure per metric computed, and the overview."""
        out = {
            m: self.figure(m)
            for m in METRICS
            if getattr(self, m) is not None and not np.all(np.isnan(getattr(self, m)))
        }
        out["overview"] = self.overview_figure()
        return out
