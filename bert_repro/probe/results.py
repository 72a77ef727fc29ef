"""The results of a probe sweep, evaluation or edge-probe run: ``results.json`` and
``results.csv`` in the output folder (the package's one schema, :mod:`bert_repro.outputs`),
rewritten atomically after every probe, and the rule for continuing them.

An existing file is continued only when it was made by the same command with the settings in
:data:`RESUME_SETTINGS` unchanged (else it is refused, :func:`bert_repro.outputs.prepare_out`)
and the input files have the same content (their SHA-256 is recorded in ``meta["inputs"]``);
rows made from inputs that changed since are dropped, and :attr:`ResultsFile.notes` says why.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..io import check_out_dir
from ..journal import changed
from ..journal import input_fingerprints as journal_fingerprints
from ..outputs import (
    RESULTS_CSV,
    RESULTS_JSON,
    model_entry,
    prepare_out,
    results_meta,
    rows_csv,
    write_results,
)

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
#: Settings that must match for an existing edge probes' ``results.json`` to be continued.
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
#: The file an earlier version's ``probe edge`` wrote (its folders are still continued).
EDGE_LEGACY_NAME = "edge_results.json"


def edge_row_order(row: dict) -> tuple:
    """Rows by model, task, then single layers before the mixes (by their top layer)."""
    layer = row["layer"]
    if layer == "mix":
        return (row["model"], row["task"], 1, int(row["mix_upto"]))
    return (row["model"], row["task"], 0, int(layer))


def rows_to_csv(rows: Sequence[dict], columns: Sequence[str] = COLUMNS) -> str:
    """The results as CSV text (``columns``, default :data:`COLUMNS`; empty for missing
    values, lists as space-separated values)."""
    return rows_csv(columns, rows)


def _structural_order(row: dict) -> tuple:
    return (row["model"], row["kind"], int(row["layer"]), int(row["rank"]))


@dataclass(frozen=True)
class ResultsTable:
    """The shape of a run's rows and the rule for continuing them.

    Attributes:
        columns: the CSV's leading columns.
        identity: the columns that name a row: an added row replaces the one it names.
        order: sort key of the rows.
        resume: settings that must match to continue an existing file.
        legacy: the file names an earlier version wrote (read when ``results.json`` is
            missing, e.g. ``edge_results.json``), so its folders keep resuming.
    """

    columns: tuple[str, ...] = COLUMNS
    identity: tuple[str, ...] = ("model", "layer", "kind", "rank")
    order: Callable[[dict], tuple] = _structural_order
    resume: tuple[str, ...] = RESUME_SETTINGS
    legacy: tuple[str, ...] = ()


#: The structural probes' rows (``probe sweep``/``probe train``).
STRUCTURAL_TABLE = ResultsTable()
#: A saved probes' evaluation (``probe evaluate``; an earlier version wrote evaluation.json).
EVALUATION_TABLE = ResultsTable(legacy=("evaluation.json",))
#: The edge probes' rows (``probe edge``).
EDGE_TABLE = ResultsTable(
    columns=EDGE_COLUMNS,
    identity=("model", "task", "layer", "mix_upto"),
    order=edge_row_order,
    resume=EDGE_RESUME_SETTINGS,
    legacy=(EDGE_LEGACY_NAME,),
)


def open_run(
    out: str | os.PathLike,
    specs: Sequence,
    paths: dict[str, str | os.PathLike | None],
    settings,
    extraction,
    *,
    command: str,
    log: Callable[[str], None],
    **options,
) -> ResultsFile:
    """The :class:`ResultsFile` of a probe run (structural or edge) in ``out``, recording what
    decides whether earlier rows still stand: the models, the cache dtype and precision, the
    treebanks (and their fingerprints) and the training settings (``settings.describe()``).
    Its notes (rows dropped because an input changed) go to ``log``.

    Args:
        specs: the run's :class:`~bert_repro.probe.specs.ModelSpec` list.
        paths: ``{"train": ..., "dev": ..., "test": ...}`` CoNLL-U files (None: not given).
        settings, extraction: the run's probe settings and :class:`ExtractionSettings`.
        command: the command whose results these are (``"probe sweep"``, ...).
        options: :class:`ResultsFile` keywords (``overwrite``, ``table``).
    """
    check_out_dir(out)
    record = {
        "models": [f"{s.label}={s.source}" for s in specs],
        "cache_dtype": extraction.cache_dtype,
        "precision": extraction.precision,
        **{name: None if p is None else str(p) for name, p in paths.items()},
        **settings.describe(),
    }
    results = ResultsFile(
        out, record, command=command, inputs=treebank_fingerprints(paths), **options
    )
    for note in results.notes:
        log(note)
    return results


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
    """``results.json`` and ``results.csv`` of a probe run (:mod:`bert_repro.outputs`'s
    schema: ``meta`` with the settings, models and input fingerprints, ``rows``), rewritten
    atomically after each row.

    Args:
        out: the folder.
        settings: the run's settings; those in ``resume`` must match an existing file's, or it
            is refused (:func:`bert_repro.outputs.prepare_out`, which also applies
            ``overwrite``).
        command: the command making it (``"probe sweep"``, ...): another command's results in
            ``out`` are refused.
        inputs: fingerprints of the input files (:func:`treebank_fingerprints`), recorded in the
            metadata. When an existing file recorded other ones (or none), its rows are dropped
            (every row depends on every input), and :attr:`notes` says why.
        redo: what dropping them means, for :attr:`notes` (``"retraining"``).
        table: the rows' columns, identity, order, resume settings and legacy file names
            (default :data:`STRUCTURAL_TABLE`).
        overwrite: delete the earlier results in ``out`` first.

    Attributes:
        rows: the result rows kept from an earlier run, then added.
        notes: lines to show the user about rows dropped as stale.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        settings: dict,
        *,
        command: str = "probe sweep",
        inputs: dict | None = None,
        redo: str = "retraining",
        table: ResultsTable = STRUCTURAL_TABLE,
        overwrite: bool = False,
    ):
        self.out = Path(out)
        self.command = command
        self.columns = tuple(table.columns)
        self.identity = tuple(table.identity)
        self.order = table.order
        self.json_path = self.out / RESULTS_JSON
        self.csv_path = self.out / RESULTS_CSV
        earlier = prepare_out(
            self.out,
            command=command,
            settings=settings,
            resume=table.resume,
            overwrite=overwrite,
            legacy=table.legacy,
        )
        models = dict(earlier.meta.get("models") or {}) if earlier is not None else {}
        extra = {} if inputs is None else {"inputs": inputs}
        self.meta = results_meta(command=command, settings=settings, models=models, **extra)
        self.paths = {k: settings.get(k) for k in (inputs or {})}  # split -> path, for notes
        self.redo = redo
        self.rows: list[dict] = []
        self.notes: list[str] = []
        if earlier is not None:
            self.rows = list(earlier.rows)
            if inputs is not None and self.rows:
                self._drop_if_inputs_changed(earlier.meta.get("inputs"), inputs)

    def start_model(self, target, out: str | os.PathLike, redo: str) -> str | None:
        """Record a loaded model (a :class:`~bert_repro.probe.prepare.ProbeTarget`) in
        ``meta["models"]`` and drop its rows made with other weights or another tokenizer;
        a line saying so (naming ``out`` and what it means, ``redo``), or None."""
        spec = target.spec
        self.set_model(spec.label, model_entry(spec.source, fingerprint=target.fingerprint))
        if self.drop_other_versions(spec.label, target.fingerprint, target.tokenizer_fingerprint):
            return (
                f"model {spec.label} (weights or tokenizer) changed since the results in "
                f"{out} were made: {redo}"
            )
        return None

    def set_model(self, label: str, entry: dict) -> None:
        """Record a model of the run in ``meta["models"]`` (:func:`bert_repro.outputs.model_entry`)."""
        self.meta["models"][label] = dict(entry)

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
        write_results(
            self.out, self.rows, command=self.command, meta=self.meta, columns=self.columns
        )
