"""The results of a probe sweep or evaluation: ``results.json`` and ``results.csv`` in the
output folder, rewritten atomically after every probe, and the rule for continuing them.

An existing file is continued only when the settings in :data:`RESUME_SETTINGS` match and the
input files have the same content (their SHA-256 is recorded in the metadata, ``inputs``);
rows made from inputs that changed since are dropped, and :attr:`ResultsFile.notes` says why.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_write_json, atomic_write_text, read_json, run_metadata
from ..journal import changed
from ..journal import input_fingerprints as journal_fingerprints

ALL_METRICS = ("uuas", "dspr", "root_acc", "nspr")
COLUMNS = (
    "model",
    "layer",
    "kind",
    "rank",
    *ALL_METRICS,
    "dev_loss",
    "epochs",
    "best_epoch",
    *(f"dev_{m}" for m in ALL_METRICS),
    "train_seconds",
    "model_fingerprint",
    "weights",
)
#: Settings that must match for an existing results file to be continued (the input files'
#: content is checked apart: a change drops the rows instead of refusing the folder).
RESUME_SETTINGS = ("train", "dev", "test", "epochs", "batch_size", "seed", "limit", "cache_dtype")


#: The edge probes' results (:func:`bert_repro.probe.edge.run_edge_probes`): one row a probe,
#: ``layer`` an int or ``"mix"`` (the mix of layers ``0..mix_upto``).
EDGE_COLUMNS = (
    "model",
    "task",
    "layer",
    "mix_upto",
    "f1",
    "n",
    "dev_f1",
    "dev_n",
    "expected_layer",
    "cumulative_expected_layer",
    "dev_cumulative_expected_layer",
    "gamma",
    "mix_weights",
    "dev_loss",
    "epochs",
    "best_epoch",
    "train_seconds",
    "num_labels",
    "model_fingerprint",
)
#: Settings that must match for an existing ``edge_results.json`` to be continued.
EDGE_RESUME_SETTINGS = (
    "train",
    "dev",
    "test",
    "epochs",
    "batch_size",
    "seed",
    "limit",
    "cache_dtype",
    "learning_rate",
    "lr_factor",
    "patience",
    "projection_dim",
    "hidden_dim",
    "dropout",
)
EDGE_RESULTS_NAME = "edge_results"


def edge_row_order(row: dict) -> tuple:
    """Rows by model, task, then single layers before the mixes (by their top layer)."""
    layer = row["layer"]
    if layer == "mix":
        return (row["model"], row["task"], 1, int(row["mix_upto"]))
    return (row["model"], row["task"], 0, int(layer))


def _cell(v):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    if isinstance(v, (list, tuple)):  # e.g. mix weights: space-separated numbers
        return " ".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in v)
    return v


def rows_to_csv(rows: Sequence[dict], columns: Sequence[str] = COLUMNS) -> str:
    """The results as CSV text (``columns``, default :data:`COLUMNS`; empty for missing
    values, lists as space-separated values)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buf.getvalue()


def _structural_order(row: dict) -> tuple:
    return (row["model"], row["kind"], int(row["layer"]), int(row["rank"]))


def treebank_fingerprints(paths: dict[str, str | os.PathLike | None]) -> dict[str, str | None]:
    """``{split: "sha256:..."}`` of each treebank given (None ones left out), see
    :func:`bert_repro.journal.input_fingerprints`.

    Raises:
        DataError: a file is missing or is a folder.
    """
    for path in paths.values():
        if path is not None and Path(path).is_dir():
            raise DataError("is a folder, not a CoNLL-U file", path=path)
        if path is not None and not Path(path).exists():
            raise DataError("no such CoNLL-U file", path=path)
    return journal_fingerprints(paths)


class ResultsFile:
    """``results.json`` (settings, input fingerprints, versions, rows) and ``results.csv`` in a
    folder, rewritten atomically after each row.

    Args:
        out: the folder.
        settings: the run's settings; those in :data:`RESUME_SETTINGS` must match an existing
            file's, or it is refused.
        name: the files' stem.
        inputs: fingerprints of the input files (:func:`treebank_fingerprints`), recorded in the
            metadata. When an existing file recorded other ones (or none), its rows are dropped
            (every row depends on every input), and :attr:`notes` says why.
        redo: what dropping them means, for :attr:`notes` (``"retraining"``).
        columns: the CSV's columns (default the structural probes' :data:`COLUMNS`).
        identity: the columns that name a row: an added row replaces the one it names.
        order: sort key of the rows.
        resume: settings that must match to continue (default :data:`RESUME_SETTINGS`).

    Attributes:
        rows: the result rows kept from an earlier run, then added.
        notes: lines to show the user about rows dropped as stale.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        settings: dict,
        *,
        name: str = "results",
        inputs: dict | None = None,
        redo: str = "retraining",
        columns: Sequence[str] = COLUMNS,
        identity: Sequence[str] = ("model", "layer", "kind", "rank"),
        order=_structural_order,
        resume: Sequence[str] = RESUME_SETTINGS,
    ):
        self.out = Path(out)
        self.columns = tuple(columns)
        self.identity = tuple(identity)
        self.order = order
        self.json_path = self.out / f"{name}.json"
        self.csv_path = self.out / f"{name}.csv"
        self.meta = run_metadata(**settings)
        if inputs is not None:
            self.meta["inputs"] = inputs
        self.paths = {k: settings.get(k) for k in (inputs or {})}  # split -> path, for notes
        self.redo = redo
        self.rows: list[dict] = []
        self.notes: list[str] = []
        if self.json_path.exists():
            try:
                old = read_json(self.json_path)
                before = old.get("metadata", {}).get("settings", {})
            except (ValueError, AttributeError) as err:
                raise DataError(
                    f"cannot continue from it: it is not a results file ({err}); choose another "
                    "--out folder or delete it",
                    path=self.json_path,
                ) from None
            now = self.meta["settings"]
            diff = [k for k in resume if k in before and before.get(k) != now.get(k)]
            if diff:
                raise ConfigError(
                    f"{self.json_path} was made with other settings ({', '.join(diff)}: "
                    f"{[before.get(k) for k in diff]} vs {[now.get(k) for k in diff]}); "
                    "choose another --out folder or delete it"
                )
            self.rows = list(old.get("results", []))
            if inputs is not None and self.rows:
                self._drop_if_inputs_changed(old.get("metadata", {}).get("inputs"), inputs)

    def _drop_if_inputs_changed(self, before: dict | None, now: dict) -> None:
        diff = changed(before, now)
        if diff is None:
            self.notes.append(
                f"the results in {self.out} do not record the content of their input files "
                f"(made by an earlier version): {self.redo}"
            )
        for name in diff or ():
            self.notes.append(
                f"{name} file {self.paths.get(name, name)} changed since the results in "
                f"{self.out} were made: {self.redo}"
            )
        if self.notes:
            self.rows = []

    def drop_other_versions(self, model: str, fingerprint: str, tokenizer: str) -> int:
        """Drop the rows of ``model`` made with other weights or another tokenizer (their
        fingerprints differ); return how many there were."""
        before = len(self.rows)
        self.rows = [
            r
            for r in self.rows
            if r["model"] != model
            or (r.get("model_fingerprint"), r.get("tokenizer_fingerprint"))
            == (fingerprint, tokenizer)
        ]
        return before - len(self.rows)

    def find(
        self,
        model: str,
        fingerprint: str,
        layer: int,
        kind: str,
        rank: int,
        *,
        tokenizer: str | None = None,
    ):
        """The row of this probe made with these model (and, if given, tokenizer) fingerprints."""
        for row in self.rows:
            if (row["model"], row.get("model_fingerprint"), row["layer"], row["kind"]) == (
                model,
                fingerprint,
                layer,
                kind,
            ) and int(row["rank"]) == int(rank):
                if tokenizer is None or row.get("tokenizer_fingerprint") == tokenizer:
                    return row
        return None

    def add(self, row: dict) -> None:
        """Add ``row`` (replacing the row with the same :attr:`identity`) and rewrite."""
        self.add_all([row])

    def add_all(self, rows: Sequence[dict]) -> None:
        """Add several rows, then rewrite the files once."""
        for row in rows:
            key = tuple(row.get(k) for k in self.identity)
            self.rows = [r for r in self.rows if tuple(r.get(k) for k in self.identity) != key]
            self.rows.append(row)
        self.rows.sort(key=self.order)
        self.write()

    def write(self) -> None:
        atomic_write_json(self.json_path, {"metadata": self.meta, "results": self.rows})
        atomic_write_text(self.csv_path, rows_to_csv(self.rows, self.columns))
