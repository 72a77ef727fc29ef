"""What a train/sweep run folder records about its saved probes, and the check that they are
evaluated on the model they were trained on.

A probe reads one model's hidden states: on another model's (a different fine-tune under the
same label, say) it still gives numbers, and they mean nothing. The folder's ``results.json``
holds, per probe, the fingerprint of the model it was trained on
(:func:`bert_repro.models.model_fingerprint`) and its rank, and the ``label=source`` of every
model of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError
from ..outputs import RESULTS_JSON, read_results


@dataclass(frozen=True)
class TrainedProbes:
    """The record of a train/sweep run folder (empty when it has no ``results.json``).

    Attributes:
        folder: the run folder (holding ``probes/`` and ``results.json``).
        rows: its result rows (``model``, ``layer``, ``kind``, ``rank``, ``model_fingerprint``).
        models: its models as ``label=source``.
    """

    folder: Path
    rows: tuple[dict, ...] = ()
    models: tuple[str, ...] = ()

    @classmethod
    def read(cls, folder: str | os.PathLike) -> TrainedProbes:
        """Read ``<folder>/results.json``.

        Raises:
            DataError: it exists but is not a results file.
        """
        path = Path(folder) / RESULTS_JSON
        if not path.exists():
            return cls(Path(folder))
        try:
            saved = read_results(path)  # this version's layout or an earlier one's
            return cls(Path(folder), tuple(saved.rows), tuple(saved.settings["models"]))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            reason = err.reason if isinstance(err, DataError) else str(err)
            raise DataError(
                f"not a results file of a train or sweep run ({reason})", path=path
            ) from None

    def ranks(self, labels: Iterable[str]) -> list[int]:
        """The ranks of the probes of these models (sorted, each once)."""
        wanted = set(labels)
        return sorted({int(r["rank"]) for r in self.rows if r.get("model") in wanted})

    def check_model(self, label: str, source: str | None, fingerprint: str) -> None:
        """Refuse to evaluate the probes of ``label`` on a model other than the one they were
        trained on (rows without a fingerprint, e.g. from older runs, are not checked).

        Raises:
            ConfigError: naming both models, their fingerprints, the folder and the fixes.
        """
        trained = {r.get("model_fingerprint") for r in self.rows if r.get("model") == label}
        trained.discard(None)
        if not trained or fingerprint in trained:
            return
        was = next((m.split("=", 1)[1] for m in self.models if m.startswith(f"{label}=")), "?")
        short = ", ".join(sorted(f[:12] for f in trained))
        raise ConfigError(
            f"the probes of {label} in {self.folder} were trained on {label}={_shown(was)} "
            f"(model fingerprint {short}), not on {label}={_shown(source)} (fingerprint "
            f"{fingerprint[:12]}): give --model {label}=<the model they were trained on>, or "
            "train probes for this model"
        )


def _shown(source: str | None) -> str:
    return "default" if source in (None, "None") else str(source)
