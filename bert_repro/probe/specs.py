"""Which models a probe run covers: ``label=source`` specs, and where their probes are saved."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..models import DEFAULT_MODEL_NAMES

DEFAULT_MODEL_LABEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ModelSpec:
    """A model to probe: ``label`` names it in results and folders; ``source`` is what
    :func:`bert_repro.models.load_bert` loads (``None`` = the offline default)."""

    label: str
    source: str | None


def parse_model_spec(text: str | None) -> ModelSpec:
    """``None``/``"minilm"``/``"default"`` -> the offline default; ``"label=path_or_name"`` sets the label;
    otherwise the label is the folder's or hub name's last part."""
    if text is None or text in DEFAULT_MODEL_NAMES:
        return ModelSpec(DEFAULT_MODEL_LABEL, None)
    if "=" in text and not Path(text).exists():
        label, source = text.split("=", 1)
        return ModelSpec(_safe(label), None if source in ("", *DEFAULT_MODEL_NAMES) else source)
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


def model_specs(models: Sequence[str | None] | None) -> list[ModelSpec]:
    """Unique specs of ``models`` (default: the offline model alone)."""
    return unique_specs([parse_model_spec(m) for m in (models or [None])])


def probe_dir(out: str | os.PathLike, label: str, kind: str, layer: int) -> Path:
    """``<out>/probes/<label>/<kind>-layer<k>``; the weights are ``<that>/model`` (a TF
    checkpoint: ``probe.load_weights(<that>/model)``)."""
    return Path(out) / "probes" / label / f"{kind}-layer{layer}"
