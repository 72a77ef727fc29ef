"""The main job: fine-tune, compare layer by layer, probe every layer, and write a report.

>>> from bert_repro.reproduce import preset, run_reproduction
>>> run_reproduction(preset("offline"), "runs/reproduce")   # what `make demo` runs

Command line: ``bert-repro reproduce [--preset offline|paper] [--out DIR]``.
"""

from __future__ import annotations

from .config import PRESETS, FinetuneJob, ReproduceConfig, TextSource, preset
from .runner import run_reproduction

__all__ = ["PRESETS", "FinetuneJob", "ReproduceConfig", "TextSource", "preset", "run_reproduction"]
