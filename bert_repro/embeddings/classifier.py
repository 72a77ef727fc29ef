"""A linear (or small) Keras classifier on frozen BERT sentence features (seed notebook 004).

BERT runs once over all texts (:func:`bert_repro.embeddings.sentence_features`); the features
are kept in NumPy and a ``tf.data`` pipeline over them is ``cache()``-d, so every epoch costs
only the head. The head is ``Normalization -> [Dense(relu) -> Dropout] -> Dense(C)`` trained
with ``fit`` on softmax cross-entropy of the logits (the seed applied softmax and then
``CrossEntropyLoss``, which applies it again), with early stopping on a validation part of
the training split.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..agnews import AGNEWS_LABELS, NewsItem, is_agnews_header, read_agnews_csv
from ..errors import ConfigError, DataError, check_positive
from ..io import SavesResults
from ..settings import ExtractionSettings
from ..text import csv_rows
from ._extraction import resolve_settings
from .recipes import Recipe, check_recipe
from .sentences import SentencePooling, check_sentence_poolings, sentence_features

VALIDATION_FRACTION = 0.1  # of the training part, held out for early stopping (train_head)


@dataclass(frozen=True)
class LabeledTexts:
    """Texts with integer labels ``0..C-1``.

    Attributes:
        texts: N strings.
        labels: ``(N,)`` int64 class indices.
        class_names: C names, ``class_names[k]`` for label ``k``.
        written: the N labels as written in the file (``None``: not from a file).
        lines: the N texts' 1-based lines in the file (``None``: not from a file).
        path: the file (``None``: not from a file).
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    written: tuple[str, ...] | None = None
    lines: tuple[int, ...] | None = None
    path: str | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_agnews(
        cls, items: Sequence[NewsItem], *, path: str | os.PathLike | None = None
    ) -> LabeledTexts:
        """AG News items (:func:`bert_repro.agnews.read_agnews_csv` or
        :func:`~bert_repro.agnews.load_agnews_tfds`) as labelled texts.

        The classes are the AG News topics present, in their order (World, Sports, Business,
        Sci/Tech: labels 0..3 when all four are present); labels as written are the files'
        ``1..4``.

        Raises:
            DataError: fewer than two topics.
        """
        items = list(items)
        present = sorted({item.label for item in items})
        if len(present) < 2:
            names = [AGNEWS_LABELS[k] for k in present]
            raise DataError(
                f"only one class ({names}) in the labels: nothing to classify", path=path
            )
        index = {k: i for i, k in enumerate(present)}
        from_file = all(item.line is not None for item in items)
        return cls(
            texts=tuple(item.text for item in items),
            labels=np.array([index[item.label] for item in items], dtype=np.int64),
            class_names=tuple(AGNEWS_LABELS[k] for k in present),
            written=tuple(str(item.label + 1) for item in items) if from_file else None,
            lines=tuple(item.line for item in items) if from_file else None,
            path=None if path is None else str(path),
        )


def _looks_like_agnews(fields: list[str]) -> bool:
    """A first row that is AG News' header, or an AG News row of a file without a header."""
    if is_agnews_header(fields):
        return True
    return len(fields) == 3 and fields[0].strip() in ("1", "2", "3", "4")


def read_labeled_csv(
    path: str | os.PathLike,
    *,
    text_columns: Sequence[str] | None = None,
    label_column: str = "label",
    limit: int | None = None,
) -> LabeledTexts:
    """Read a CSV of labelled texts, e.g. ``ag-news/test.csv`` (``label,title,description``).

    An AG News file (its header ``label,title,description``, or its rows without a header) is
    read by the package's one AG News reader, :func:`bert_repro.agnews.read_agnews_csv`, which
    undoes the corpus' escapes (:func:`~bert_repro.agnews.clean_agnews_text`); see
    :meth:`LabeledTexts.from_agnews` for its classes. Any other file needs a header row; its
    texts are taken as written (runs of whitespace become one space).

    Args:
        path: CSV with a header row (or an AG News file).
        text_columns: columns joined by a space into the text; default ``("text",)``.
        label_column: the label column. Labels are mapped to ``0..C-1`` in sorted order (ints
            numerically).
        limit: keep only the first ``limit`` rows.

    Raises:
        DataError: missing file, not UTF-8, missing columns (listing the ones present), a row
            without the header's number of fields, a blank text or label (with its line),
            fewer than two classes; for AG News a label outside 1..4.
        ConfigError: ``limit`` is not a positive int.
    """
    path = Path(path)
    _check_limit(limit)
    fields, rows = csv_rows(path)
    if not fields:
        raise DataError("empty CSV file (no header row)", path=path)
    if text_columns is None and label_column == "label" and _looks_like_agnews(fields):
        return LabeledTexts.from_agnews(read_agnews_csv(path, limit=limit), path=path)
    if text_columns is None:
        text_columns = ("text",)
    missing = [c for c in (label_column, *text_columns) if c not in fields]
    if missing:
        found = ", ".join(repr(c) for c in fields)
        raise DataError(
            f"missing column(s) {', '.join(repr(c) for c in missing)}; the columns are {found}",
            path=path,
            line=1,
        )
    texts, raw, lines = [], [], []
    for line, row in rows:
        text = " ".join(" ".join(row[c] for c in text_columns).split())
        label = row[label_column].strip()
        if not text or not label:
            raise DataError(f"blank {'text' if not text else 'label'}", path=path, line=line)
        texts.append(text)
        raw.append(label)
        lines.append(line)
        if limit is not None and len(texts) >= limit:
            break
    if not texts:
        raise DataError("no rows after the header", path=path)
    data = _labeled(texts, raw, path=path)
    return dataclasses.replace(data, written=tuple(raw), lines=tuple(lines), path=str(path))


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ConfigError(f"limit must be a positive int or None, got {limit!r}")


def _labeled(texts, raw_labels, *, path=None) -> LabeledTexts:
    numeric = all(str(v).lstrip("-").isdigit() for v in raw_labels)
    values = [int(v) for v in raw_labels] if numeric else [str(v) for v in raw_labels]
    classes = sorted(set(values))
    if len(classes) < 2:
        raise DataError(f"only one class ({classes}) in the labels: nothing to classify", path=path)
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index[v] for v in values], dtype=np.int64)
    return LabeledTexts(tuple(texts), labels, tuple(str(c) for c in classes))


def truncate_texts(tokenizer, texts: Sequence[str], max_length: int) -> tuple[list[str], int]:
    """Cut texts so that each has at most ``max_length`` wordpieces with ``[CLS]``/``[SEP]``.

    A text is cut at the end of its ``max_length - 2``-th wordpiece (character offsets from
    the fast tokenizer), so re-tokenising the cut text gives that text's first pieces.

    Returns:
        ``(texts, n_truncated)``.
    """
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    keep = int(max_length) - specials
    if keep < 1:
        raise ConfigError(f"max_length={max_length} leaves no room for wordpieces")
    texts = list(texts)
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    out, cut = [], 0
    for text, ids, offsets in zip(texts, enc["input_ids"], enc["offset_mapping"], strict=True):
        k = keep
        while len(ids) > keep:
            text = text[: offsets[k - 1][1]]
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            k -= 1
        cut += int(len(offsets) > keep)
        out.append(text)
    return out, cut


def stratified_split(
    labels: np.ndarray, test_fraction: float = 0.2, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: each class contributes ``round(n_c * test_fraction)`` items.

    Returns:
        ``(train_index, test_index)``, sorted int64 arrays covering ``range(len(labels))``.
    """
    _check_fraction("test_fraction", test_fraction)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = _held_out(len(members), test_fraction)
        if n_test is None:
            raise DataError(
                f"class {c} has {len(members)} item(s): too few to split with "
                f"test_fraction={test_fraction}"
            )
        test.append(rng.permutation(members)[:n_test])
    test_index = np.sort(np.concatenate(test))
    train_index = np.setdiff1d(np.arange(len(labels)), test_index)
    return train_index.astype(np.int64), test_index.astype(np.int64)


def _check_fraction(name: str, fraction: float) -> None:
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"{name} must be in (0, 1), got {fraction}")


def _held_out(n: int, fraction: float) -> int | None:
    """How many of a class's ``n`` items :func:`stratified_split` holds out (``round(n *
    fraction)``), or ``None`` when that leaves either part empty."""
    k = int(round(n * float(fraction)))
    return k if 0 < k < n else None


def _splits(n: int, test_fraction: float, validation_fraction: float) -> bool:
    """Whether a class of ``n`` items survives the test split and then the validation split
    of its training part."""
    n_test = _held_out(n, test_fraction)
    return n_test is not None and _held_out(n - n_test, validation_fraction) is not None


def check_splittable(
    data: LabeledTexts,
    test_fraction: float = 0.2,
    validation_fraction: float = VALIDATION_FRACTION,
) -> None:
    """Every label has enough texts for the held-out test part and then the validation part of
    :func:`classify_study`; checked before any feature is extracted.

    Raises:
        DataError: naming the label as written in the file, the line of its first text, its
            count, the count needed and the labels that have enough (a label seen once is
            often a typo).
    """
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("validation_fraction", validation_fraction)
    classes, rows = np.unique(data.labels, return_index=True)
    first = dict(sorted(zip(classes.tolist(), rows.tolist(), strict=True), key=lambda cr: cr[1]))
    counts = np.bincount(data.labels, minlength=len(data.class_names))
    short = [c for c in first if not _splits(counts[c], test_fraction, validation_fraction)]
    if not short:
        return
    need = next((n for n in range(2, 10_000) if _splits(n, test_fraction, validation_fraction)), 0)
    name = {c: _label(data, c, first[c]) for c in first}
    also = ", ".join(f"{name[c]} ({counts[c]})" for c in short[1:])
    enough = ", ".join(name[c] for c in first if c not in short) or "none"
    raise DataError(
        f"label {name[short[0]]} has {counts[short[0]]} text(s), too few: each label needs at "
        f"least {need} to hold out test_fraction={test_fraction} and then "
        f"validation_fraction={validation_fraction} of them"
        + (f" (also too few: {also})" if also else "")
        + f"; the labels with enough are {enough}",
        path=data.path,
        line=None if data.lines is None else data.lines[first[short[0]]],
    )


def _label(data: LabeledTexts, c: int, row: int) -> str:
    """Class ``c`` as the file wrote it (its first text's label), else by its name."""
    return repr(data.written[row] if data.written is not None else data.class_names[c])


def build_head(
    input_dim: int,
    num_classes: int,
    *,
    hidden_units: int = 0,
    dropout: float = 0.0,
    mean: np.ndarray | None = None,
    variance: np.ndarray | None = None,
    seed: int = 0,
):
    """The classifier head: ``Normalization -> [Dense(hidden, relu) -> Dropout] -> Dense(C)``.

    Args:
        input_dim: feature width D.
        num_classes: C; the head outputs C logits.
        hidden_units: 0 for a linear head (logistic regression), else one hidden layer.
        dropout: dropout rate before the output layer (with a hidden layer).
        mean, variance: ``(D,)`` feature statistics for the Normalization layer (default: none,
            identity standardisation).
        seed: seed of the initialisers and dropout.

    Returns:
        A ``keras.Sequential`` (serialisable: ``get_config``/``from_config`` round-trip).
    """
    from .._keras import keras

    layers = [keras.Input(shape=(int(input_dim),), name="features")]
    if mean is not None:
        layers.append(keras.layers.Normalization(axis=-1, mean=mean, variance=variance))
    if hidden_units:
        layers.append(
            keras.layers.Dense(
                int(hidden_units),
                activation="relu",
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                name="hidden",
            )
        )
        if dropout:
            layers.append(keras.layers.Dropout(float(dropout), seed=seed))
    layers.append(
        keras.layers.Dense(
            int(num_classes),
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
            name="logits",
        )
    )
    return keras.Sequential(layers, name="frozen_feature_head")


def feature_dataset(
    x: np.ndarray, y: np.ndarray, *, batch_size: int = 64, shuffle: bool = False, seed: int = 0
):
    """``tf.data`` of ``(features, label)`` batches, cached after the first pass."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32), np.asarray(y, np.int64)))
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


def train_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    num_classes: int,
    *,
    epochs: int = 50,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    validation_fraction: float = VALIDATION_FRACTION,
    patience: int = 5,
    hidden_units: int = 0,
    dropout: float = 0.0,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
):
    """Fit a head on fixed features.

    A stratified ``validation_fraction`` of the training items is held out for early stopping
    (``val_loss``, best weights restored). The Normalization statistics come from the rest.

    Args:
        log: called with one line per epoch (loss, accuracy, validation loss and accuracy),
            e.g. ``print``; ``None`` logs nothing.

    Returns:
        ``(head, history_dict)``.
    """
    from .._keras import keras

    x_train = np.asarray(x_train, dtype=np.float32)
    y_train = np.asarray(y_train, dtype=np.int64)
    if x_train.ndim != 2 or len(x_train) != len(y_train) or len(x_train) == 0:
        raise DataError(f"features {x_train.shape} and labels {y_train.shape} do not match")
    fit_idx, val_idx = stratified_split(y_train, validation_fraction, seed=seed + 17)
    x_fit, y_fit = x_train[fit_idx], y_train[fit_idx]
    head = build_head(
        x_train.shape[1],
        num_classes,
        hidden_units=hidden_units,
        dropout=dropout,
        mean=x_fit.mean(axis=0),
        variance=np.maximum(x_fit.var(axis=0), 1e-12),
        seed=seed,
    )
    head.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = head.fit(
        feature_dataset(x_fit, y_fit, batch_size=batch_size, shuffle=True, seed=seed),
        validation_data=feature_dataset(x_train[val_idx], y_train[val_idx], batch_size=256),
        epochs=int(epochs),
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=int(patience), restore_best_weights=True
            ),
            *([] if log is None else [_epoch_log(log)]),
        ],
        verbose=0,
    )
    return head, {k: [float(v) for v in vs] for k, vs in history.history.items()}


def _epoch_log(log: Callable[[str], None]):
    from .._keras import keras

    def line(epoch, logs):
        values = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
        log(f"epoch {epoch + 1}  {values}")

    return keras.callbacks.LambdaCallback(on_epoch_end=line)


def evaluate_head(
    head, x: np.ndarray, y: np.ndarray, class_names: Sequence[str]
) -> dict[str, object]:
    """Accuracy, per-class accuracy (recall) and the confusion matrix on ``(x, y)``.

    Returns:
        ``{"accuracy": float, "per_class": {name: float}, "confusion": (C, C) list
        (rows = true class, columns = predicted), "n": int}``.
    """
    y = np.asarray(y, dtype=np.int64)
    logits = head.predict(feature_dataset(x, y, batch_size=256).map(lambda a, b: a), verbose=0)
    pred = np.argmax(logits, axis=-1)
    c = len(class_names)
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    per_class = {
        name: float(confusion[k, k] / max(confusion[k].sum(), 1))
        for k, name in enumerate(class_names)
    }
    return {
        "accuracy": float(np.mean(pred == y)),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "n": int(len(y)),
    }


def check_classify_study(
    data: LabeledTexts | None = None,
    *,
    features: Sequence[SentencePooling] = ("cls", "mean"),
    recipe: Recipe = "last_layer",
    test_fraction: float = 0.2,
    max_length: int | None = 128,
    epochs: int = 50,
    hidden_units: int = 0,
    learning_rate: float = 1e-3,
) -> None:
    """The options of :func:`classify_study` (and, when given, that every label of ``data``
    can be split: :func:`check_splittable`), checked before any model is loaded.

    Raises:
        ConfigError: an unknown feature kind or recipe, a fraction outside (0, 1), a
            ``max_length`` below 3 (``[CLS]`` + a piece + ``[SEP]``), a count below 1 (0 for
            ``hidden_units``), a learning rate that is not positive.
        DataError: no feature kind, no texts, or a label too rare to split.
    """
    check_sentence_poolings(features, "features")
    check_recipe(recipe)
    _check_fraction("test_fraction", test_fraction)
    check_positive("max_length", max_length, minimum=3, optional=True)
    check_positive("epochs", epochs)
    check_positive("hidden_units", hidden_units, minimum=0)
    if not learning_rate > 0:
        raise ConfigError(f"learning_rate must be positive, got {learning_rate}")
    if data is not None:
        if len(data) == 0:
            raise DataError("no texts to classify")
        check_splittable(data, test_fraction)


@dataclass(frozen=True, eq=False)
class ClassificationResult(SavesResults):
    """Held-out results of a head trained on each kind of frozen sentence feature.

    Attributes:
        class_names: the C classes.
        n_train, n_test: texts in the training and held-out parts.
        n_truncated: texts cut to ``max_length`` wordpieces.
        results: per feature kind: ``accuracy``, ``per_class`` ``{class: recall}``,
            ``confusion`` (C, C) (rows = true class), ``n``, ``epochs_run``, ``history``.
        settings: what made the numbers (recipe, split, head, extraction settings).
    """

    stem: ClassVar[str] = "classify"
    command: ClassVar[str] = "embeddings classify"

    class_names: tuple[str, ...]
    n_train: int
    n_test: int
    n_truncated: int
    results: dict[str, dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def best(self) -> str:
        """The feature kind with the highest held-out accuracy."""
        return max(self.results, key=lambda kind: self.results[kind]["accuracy"])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_truncated": self.n_truncated,
            "class_names": list(self.class_names),
            "results": self.results,
        }

    def to_frame(self):
        """A ``pandas.DataFrame``, one row per feature kind: ``accuracy``, each class's
        accuracy (recall) and ``epochs`` run, indexed by ``feature``."""
        import pandas as pd

        rows = {
            kind: {"accuracy": r["accuracy"], **r["per_class"], "epochs": r["epochs_run"]}
            for kind, r in self.results.items()
        }
        return pd.DataFrame(rows).T.rename_axis("feature").astype({"epochs": int})

    def confusion_figure(self, kind: str | None = None):
        """The confusion matrix of feature ``kind`` (default: :meth:`best`)."""
        from .figures import confusion_figure

        kind = self.best() if kind is None else kind
        if kind not in self.results:
            raise DataError(f"no results for features {kind!r}; there are {list(self.results)}")
        return confusion_figure(
            self.results[kind]["confusion"], self.class_names, title=f"{kind} features"
        )

    def training_figure(self):
        """Training and validation accuracy per epoch of every head."""
        from .figures import training_figure

        return training_figure({k: r["history"] for k, r in self.results.items()})

    def figures(self) -> dict[str, Any]:
        """Plotly figures by file name: ``confusion_<kind>`` and ``training``."""
        figs = {f"confusion_{kind}": self.confusion_figure(kind) for kind in self.results}
        figs["training"] = self.training_figure()
        return figs

    def summary(self) -> list[str]:
        """Lines to print: each feature kind's held-out accuracy, overall and per class."""
        lines = []
        for kind, res in self.results.items():
            per = ", ".join(f"{k} {v:.3f}" for k, v in res["per_class"].items())
            lines.append(
                f"{kind}: accuracy {res['accuracy']:.4f} on {res['n']} held-out texts ({per})"
            )
        return lines


def classify_study(
    model,
    tokenizer,
    data: LabeledTexts,
    *,
    features: Sequence[SentencePooling] = ("cls", "mean"),
    recipe: Recipe = "last_layer",
    test_fraction: float = 0.2,
    seed: int = 0,
    max_length: int | None = 128,
    epochs: int = 50,
    hidden_units: int = 0,
    learning_rate: float = 1e-3,
    log: Callable[[str], None] | None = None,
    settings: ExtractionSettings | None = None,
    **options,
) -> ClassificationResult:
    """Frozen-feature classification: extract once, split, train a head per feature kind.

    Args:
        model, tokenizer: the frozen BERT.
        data: labelled texts (:func:`read_labeled_csv`, or
            :meth:`LabeledTexts.from_agnews` of :func:`bert_repro.agnews.load_agnews_tfds`).
        features: sentence-vector kinds to compare (``cls``, ``mean``, ``pooler``), all taken
            from one extraction pass.
        recipe: layer recipe for ``cls``/``mean`` (default the last layer).
        test_fraction, seed: the held-out stratified split.
        max_length: cut texts to this many wordpieces (``None``: refuse too-long texts).
        epochs, hidden_units, learning_rate: the head's training (see :func:`train_head`).
        log: called with one line per epoch of each head's training (``None``: silent).
        settings: how BERT runs (:class:`~bert_repro.settings.ExtractionSettings`);
            ``options`` replace some of its fields, e.g. ``max_batch=`` (texts a forward
            pass), ``max_tokens=``, ``strategy=``, ``progress=``.

    Returns:
        A :class:`ClassificationResult`.
    """
    features = tuple(features)
    check_classify_study(
        data,
        features=features,
        recipe=recipe,
        test_fraction=test_fraction,
        max_length=max_length,
        epochs=epochs,
        hidden_units=hidden_units,
        learning_rate=learning_rate,
    )
    extraction = resolve_settings(settings, options)
    texts, n_truncated = list(data.texts), 0
    if max_length is not None:
        texts, n_truncated = truncate_texts(tokenizer, texts, max_length)
    train_idx, test_idx = stratified_split(data.labels, test_fraction, seed=seed)
    feats = sentence_features(model, tokenizer, texts, features, recipe=recipe, settings=extraction)
    results = {}
    for kind in features:
        x = feats[kind]
        if log is not None:
            log(f"{kind} features: training the head")
        head, history = train_head(
            x[train_idx],
            data.labels[train_idx],
            len(data.class_names),
            epochs=epochs,
            hidden_units=hidden_units,
            learning_rate=learning_rate,
            seed=seed,
            log=log,
        )
        res = evaluate_head(head, x[test_idx], data.labels[test_idx], data.class_names)
        res["epochs_run"] = len(history.get("loss", []))
        res["history"] = history
        results[kind] = res
    return ClassificationResult(
        class_names=tuple(data.class_names),
        n_train=int(len(train_idx)),
        n_test=int(len(test_idx)),
        n_truncated=int(n_truncated),
        results=results,
        settings={
            "features": list(features),
            "recipe": recipe,
            "test_fraction": test_fraction,
            "seed": seed,
            "max_length": max_length,
            "epochs": epochs,
            "hidden_units": hidden_units,
            "learning_rate": learning_rate,
            "extraction": extraction.describe(),
        },
    )
