"""MNLI (Williams et al., 2018): premise / hypothesis pairs labelled entailment, neutral or
contradiction, from tensorflow-datasets ``glue/mnli`` or a GLUE ``.tsv`` file."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..data import as_text, tfds_records
from ..errors import DataError
from ..text import read_utf8
from .classification import ClassificationExample

# The label order of tfds glue/mnli (and of GLUE's MNLI processors).
MNLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
TFDS_NAME = "glue/mnli"
# tfds splits: train (392,702), validation_matched (9,815), validation_mismatched (9,832),
# test_matched / test_mismatched (labels -1: unlabelled).
TRAIN_SPLIT = "train"
EVAL_SPLIT = "validation_matched"


def load_mnli_tfds(
    split: str = TRAIN_SPLIT, *, data_dir: str | os.PathLike | None = None
) -> list[ClassificationExample]:
    """Read a ``glue/mnli`` split (``premise``, ``hypothesis``, ``label``, ``idx``).

    Unlabelled rows (label -1, the GLUE test splits) are left out.

    Raises:
        DataError: the split cannot be loaded, or has no labelled rows.
    """
    examples = [
        ClassificationExample(
            as_text(r["premise"]), as_text(r["hypothesis"]), int(r["label"]), str(int(r["idx"]))
        )
        for r in tfds_records(TFDS_NAME, split, data_dir=data_dir)
        if int(r["label"]) >= 0
    ]
    if not examples:
        raise DataError(f"{TFDS_NAME} split {split!r} has no labelled examples")
    return examples


def read_mnli_tsv(path: str | os.PathLike) -> list[ClassificationExample]:
    """Read a GLUE MNLI file (``train.tsv``, ``dev_matched.tsv``, ...).

    Columns used (by header name): ``sentence1`` (premise), ``sentence2`` (hypothesis) and
    ``gold_label`` (``entailment``/``neutral``/``contradiction``); rows with ``-`` (no
    annotator consensus) are left out. The id is the ``pairID`` column when present.

    Raises:
        DataError: missing file or columns, not UTF-8 (with the line), an unknown label, or no
            labelled rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    examples = []
    with io.StringIO(read_utf8(path, bom=True), newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        need = ("sentence1", "sentence2", "gold_label")
        if header is None or any(c not in header for c in need):
            raise DataError(f"expected a GLUE MNLI header with columns {need}", path=path, line=1)
        col = {name: header.index(name) for name in need}
        pair_id = header.index("pairID") if "pairID" in header else None
        for row in reader:
            line = reader.line_num
            if len(row) < len(header):
                raise DataError(
                    f"{len(row)} columns, the header has {len(header)}", path=path, line=line
                )
            gold = row[col["gold_label"]]
            if gold == "-":
                continue
            if gold not in MNLI_LABELS:
                raise DataError(
                    f"unknown label {gold!r}; expected {MNLI_LABELS}", path=path, line=line
                )
            examples.append(
                ClassificationExample(
                    row[col["sentence1"]],
                    row[col["sentence2"]],
                    MNLI_LABELS.index(gold),
                    row[pair_id] if pair_id is not None else str(line),
                )
            )
    if not examples:
        raise DataError("no labelled rows", path=path)
    return examples
