"""Tokenised inputs and their tf.data pipelines: length-grouped training batches, sorted
predictions.

Inputs are kept unpadded (one int32 array per item) and every batch is padded to its longest
item (rounded up to a multiple of 8). Training batches are random but grouped by length
(:func:`bert_repro.batching.length_grouped_batches`), prediction batches are planned over the
items sorted by length (:func:`bert_repro.batching.plan_batches`), so little padding is computed
either way; predictions are put back in the items' order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..batching import DEFAULT_WINDOW_BATCHES, length_grouped_batches, plan_batches
from ..errors import DataError

if TYPE_CHECKING:
    import tensorflow as tf  # imported where used: the data readers need no TensorFlow


@dataclass(frozen=True)
class Features:
    """``N`` tokenised model inputs, unpadded.

    Attributes:
        input_ids: ``N`` int32 arrays ``(T_i,)``, ``[CLS]``/``[SEP]`` included.
        token_type_ids: ``N`` int32 arrays ``(T_i,)``, 0 on the first segment, 1 on the second.
        extra: further model inputs, name -> ``N`` int32 arrays of any length per item (e.g.
            the parser's ``word_starts``), padded with :data:`PAD_LABEL` in batches.
    """

    input_ids: tuple[np.ndarray, ...]
    token_type_ids: tuple[np.ndarray, ...]
    extra: Mapping[str, tuple[np.ndarray, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.token_type_ids):
            raise ValueError("input_ids and token_type_ids must have one array per item")
        if any(len(v) != len(self.input_ids) for v in self.extra.values()):
            raise ValueError("every extra input must have one array per item")

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        """``(N,)`` number of wordpieces of each item."""
        return np.fromiter((len(a) for a in self.input_ids), dtype=np.int64, count=len(self))

    def take(self, index: Sequence[int]) -> Features:
        """The items at ``index``, in that order."""
        return Features(
            tuple(self.input_ids[i] for i in index),
            tuple(self.token_type_ids[i] for i in index),
            {k: tuple(v[i] for i in index) for k, v in self.extra.items()},
        )


PAD_LABEL = -1
"""Padding of per-item variable-length labels and extra inputs (e.g. per-word heads)."""


def _label_arrays(labels, n: int) -> tuple[dict[str, object], bool]:
    """``labels`` as a dict of int32 ``(N,)`` arrays or lists of ``N`` per-item int32 arrays
    (and whether it was a dict)."""
    is_dict = isinstance(labels, Mapping)
    out = {}
    for key, value in (labels if is_dict else {"": labels}).items():
        per_item = len(value) > 0 and np.ndim(value[0]) > 0
        if not per_item:
            value = np.asarray(value, dtype=np.int32)
            if value.ndim != 1:
                raise DataError(f"labels {key!r} must be (N,) or one array per item")
        else:  # one (n_i, ...) array per item (e.g. a label per word): padded per batch
            value = [np.asarray(v, dtype=np.int32) for v in value]
            if len({v.shape[1:] for v in value}) != 1:
                raise DataError(f"per-item labels {key!r} must agree in all but their length")
        if len(value) != n:
            raise DataError(f"{len(value)} labels {key!r} for {n} training examples")
        out[key] = value
    return out, is_dict


def pad_labels(
    value, index: Sequence[int], *, pad_value: int = PAD_LABEL, pad_multiple: int = 8
) -> np.ndarray:
    """The labels of the items at ``index``: ``(B,)`` from an ``(N,)`` array, or ``(B, L, ...)``
    from per-item ``(n_i, ...)`` arrays, right-padded with ``pad_value`` to the longest
    ``n_i`` rounded up to a multiple of ``pad_multiple``."""
    if isinstance(value, np.ndarray):
        return value[np.asarray(index)]
    longest = max(1, max(len(value[i]) for i in index))
    width = -(-longest // pad_multiple) * pad_multiple
    out = np.full((len(index), width, *value[index[0]].shape[1:]), pad_value, np.int32)
    for row, i in enumerate(index):
        out[row, : len(value[i])] = value[i]
    return out


def training_dataset(
    features: Features,
    labels: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray | Sequence[np.ndarray]],
    batch_size: int,
    *,
    seed: int,
    pad_id: int = 0,
    label_pad: int = PAD_LABEL,
    window_batches: int = DEFAULT_WINDOW_BATCHES,
    pad_multiple: int = 8,
) -> tf.data.Dataset:
    """An endless stream of training batches grouped by length, padded per batch.

    Which items share a batch comes from :func:`bert_repro.batching.length_grouped_batches`:
    every pass is a new seeded permutation, sorted by length within windows of
    ``window_batches`` batches, so each batch is padded to a length close to its items'; the
    batches of a pass come in a random order, every batch has exactly ``batch_size`` items
    (what a distribution strategy splits over its replicas) and every pass holds every item
    once. ``window_batches=1`` gives plain random batches. ``T`` is rounded up to a multiple
    of ``pad_multiple`` so the compiled training step sees few shapes.

    Args:
        features: the inputs.
        labels: ``(N,)`` int labels; or ``N`` per-item int arrays (e.g. one head per word),
            padded per batch with ``label_pad``; or a dict of either (e.g. ``start``/``end``).
        batch_size: global batch size ``B``.
        seed: seeds the passes' permutations and batch orders.
        pad_id: the tokenizer's padding id.
        label_pad: padding value of per-item labels (one the loss ignores).
        window_batches: batches per length-sorted window.
        pad_multiple: ``T`` (and a per-item label's ``L``) is a multiple of this.

    Returns:
        Dataset of ``(inputs, labels)``: inputs a dict of ``(B, T)`` int32 ``input_ids``,
        ``attention_mask`` (1 on real tokens) and ``token_type_ids``, and the
        ``features.extra`` inputs padded with :data:`PAD_LABEL`; labels ``(B,)`` or ``(B, L)``
        int32 (a dict when ``labels`` is one).
    """
    import tensorflow as tf

    from ..pipeline import generator_dataset

    n = len(features)
    if n == 0:
        raise DataError("no training examples")
    label_values, is_dict = _label_arrays(labels, n)
    lengths = features.lengths
    b = int(batch_size)

    def batches():
        for index in length_grouped_batches(lengths, b, seed=seed, window_batches=window_batches):
            x = pad_inputs(features, index, pad_id=pad_id, pad_multiple=pad_multiple)
            y = {
                k: pad_labels(v, index, pad_value=label_pad, pad_multiple=pad_multiple)
                for k, v in label_values.items()
            }
            yield x, (y if is_dict else y[""])

    x_spec = {
        k: tf.TensorSpec((b, None), tf.int32)
        for k in ("input_ids", "attention_mask", "token_type_ids", *features.extra)
    }
    y_spec = {
        k: tf.TensorSpec(
            (b,) if isinstance(v, np.ndarray) else (b, None, *v[0].shape[1:]), tf.int32
        )
        for k, v in label_values.items()
    }
    return generator_dataset(batches, (x_spec, y_spec if is_dict else y_spec[""])).prefetch(2)


def pad_inputs(
    features: Features, index: Sequence[int], *, pad_id: int = 0, pad_multiple: int = 8
) -> dict[str, np.ndarray]:
    """Right-pad the items at ``index`` into ``(B, T)`` int32 arrays (``T`` rounded up to a
    multiple of ``pad_multiple``, so compiled calls see few shapes); each ``features.extra``
    input likewise into ``(B, W)`` padded with :data:`PAD_LABEL`."""
    longest = max(len(features.input_ids[i]) for i in index)
    t = -(-longest // pad_multiple) * pad_multiple
    b = len(index)
    ids = np.full((b, t), pad_id, dtype=np.int32)
    types = np.zeros((b, t), dtype=np.int32)
    mask = np.zeros((b, t), dtype=np.int32)
    for row, i in enumerate(index):
        n = len(features.input_ids[i])
        ids[row, :n] = features.input_ids[i]
        types[row, :n] = features.token_type_ids[i]
        mask[row, :n] = 1
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    for key, arrays in features.extra.items():
        w = -(-max(1, max(len(arrays[i]) for i in index)) // pad_multiple) * pad_multiple
        padded = np.full((b, w), PAD_LABEL, dtype=np.int32)
        for row, i in enumerate(index):
            padded[row, : len(arrays[i])] = arrays[i]
        out[key] = padded
    return out


#: The attribute of a model that holds its compiled predict functions (by input names); kept on
#: the model, as Keras keeps ``predict_function``, so they go when the model goes.
PREDICT_ATTRIBUTE = "_bert_repro_predict"


def predict_batch(model, inputs: Mapping[str, np.ndarray]):
    """``model(inputs, training=False)`` as NumPy, what ``model.predict_on_batch(inputs)``
    gives, from one compiled function per model and input names, traced once for every
    ``(B, T)``.

    ``predict_on_batch`` traces its function anew for the first few shapes it meets (tf-keras
    relaxes them only after that: three traces per evaluation); here every input is declared
    ``(None, None)`` from the start, and traced without autograph (the model's Python control
    flow is on static values; a MiniLM task model traces in ~2 s instead of ~8 s on 2 CPU
    cores). The numbers are the same kernels' (tested equal to ``predict_on_batch``'s to
    float rounding; on the demo's AG News model they were identical).
    A model under a distribution strategy keeps ``predict_on_batch`` (it splits the batch).
    """
    import tensorflow as tf

    if getattr(model, "_distribution_strategy", None) is not None:
        return model.predict_on_batch(inputs)
    names = tuple(sorted(inputs))
    functions = getattr(model, PREDICT_ATTRIBUTE, None)
    if functions is None:
        functions = {}
        object.__setattr__(model, PREDICT_ATTRIBUTE, functions)  # not tracked as a weight
    if names not in functions:
        spec = {
            k: tf.TensorSpec((None, None), tf.as_dtype(np.asarray(inputs[k]).dtype)) for k in names
        }
        functions[names] = tf.function(
            lambda x: model(x, training=False), input_signature=[spec], autograph=False
        )
    out = functions[names]({k: inputs[k] for k in names})
    return tf.nest.map_structure(lambda t: t.numpy(), out)


def predict_logits(model, features: Features, batch_size: int, *, pad_id: int = 0):
    """Run ``model`` over every item in length-sorted batches; outputs in the items' order.

    Returns:
        For a ``(B, C)``-output model, an ``(N, C)`` float32 array. For a model returning a dict
        of ``(B, T)`` logits, a dict of lists of ``(T_i,)`` arrays (padding cut off).
    """
    n = len(features)
    lengths = features.lengths
    flat: np.ndarray | None = None
    per_item: dict[str, list] | None = None
    for index in plan_batches(lengths, batch_size):
        out = predict_batch(model, pad_inputs(features, index, pad_id=pad_id))
        if isinstance(out, Mapping):
            if per_item is None:
                per_item = {k: [None] * n for k in out}
            for key, value in out.items():
                value = np.asarray(value)
                for row, i in enumerate(index):
                    per_item[key][i] = value[row, : lengths[i]].astype(np.float32)
        else:
            out = np.asarray(out, dtype=np.float32)
            if flat is None:
                flat = np.zeros((n, out.shape[-1]), dtype=np.float32)
            flat[index] = out
    if per_item is not None:
        return per_item
    return flat if flat is not None else np.zeros((0, 0), dtype=np.float32)
