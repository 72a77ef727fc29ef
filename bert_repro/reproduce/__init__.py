"""The main job: fine-tune, compare layer by layer, probe every layer, and write a report.

>>> from bert_repro.reproduce import preset, run_reproduction
>>> run_reproduction(preset("offline"), "runs/reproduce")   # what `make demo` runs

The paper's claims checked on a finished run's numbers:

>>> from bert_repro.io import read_json
>>> from bert_repro.reproduce import check_claims, claim_inputs
>>> claims = check_claims(claim_inputs(read_json("runs/reproduce/results.json")))

Command line: ``bert-repro reproduce [--preset offline|paper] [--out DIR]``.
"""

from __future__ import annotations

from .claim_inputs import ClaimInputs, claim_inputs
from .claims import Claim, check_claims
from .config import PRESETS, FinetuneJob, ReproduceConfig, TextSource, preset
from .runner import run_reproduction

__all__ = [
    "PRESETS",
    "Claim",
    "ClaimInputs",
    "FinetuneJob",
    "ReproduceConfig",
    "TextSource",
    "check_claims",
    "claim_inputs",
    "preset",
    "run_reproduction",
]
