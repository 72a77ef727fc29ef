"""The probe kinds and how their gold labels are padded: plain constants, no TensorFlow.

Kept apart from :mod:`.model` and :mod:`.loss` (which import TensorFlow) so that the probe
commands can check their options and read their treebanks before TensorFlow is imported.
"""

from __future__ import annotations

from typing import Literal

ProbeKind = Literal["distance", "depth"]
PROBE_KINDS: tuple[str, ...] = ("distance", "depth")

# Padded gold labels hold this value, which no tree distance or depth can be.
PAD_LABEL = -1.0
