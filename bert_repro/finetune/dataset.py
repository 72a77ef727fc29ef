"""Tokenised inputs and their tf.data pipelines: shuffled training batches, sorted predictions.

Inputs are kept unpadded (one int32 array per item); training batches are padded to the longest
item of the batch by ``tf.data`` (``padded_batch``), prediction batches are planned over the
items sorted by length (:func:`bert_repro.batching.plan_batches`) so little padding is computed,
and the outputs are put back in the items' order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..batching import plan_batches
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


def _is_ragged(labels) -> bool:
    """Per-item arrays (a list/tuple of ``N`` arrays) rather than one ``(N,)`` array."""
    return isinstance(labels, (list, tuple)) and bool(labels) and isinstance(labels[0], np.ndarray)


def _label_tensor(labels):
    return _ragged(labels) if _is_ragged(labels) else np.asarray(labels, dtype=np.int32)


def _ragged(arrays: Sequence[np.ndarray]) -> tf.RaggedTensor:
    import tensorflow as tf

    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    values = np.concatenate(arrays).astype(np.int32) if len(arrays) else np.zeros(0, np.int32)
    return tf.RaggedTensor.from_row_lengths(values, lengths)


def training_dataset(
    features: Features,
    labels: np.ndarray | Mapping[str, np.ndarray],
    batch_size: int,
    *,
    seed: int,
    pad_id: int = 0,
) -> tf.data.Dataset:
    """An endless stream of shuffled, padded training batches.

    Every pass over the items is a new seeded permutation (``reshuffle_each_iteration``);
    batches run on across passes, so no item is dropped, and every batch has exactly
    ``batch_size`` items (what a distribution strategy splits over its replicas).

    Args:
        features: the inputs.
        labels: ``(N,)`` int labels, or a dict of such arrays (e.g. ``start``/``end``); a
            label may also be a tuple of ``N`` int arrays ``(n_i, ...)`` (e.g. one head per
            word), padded with :data:`PAD_LABEL` to the batch's longest.
        batch_size: global batch size ``B``.
        seed: shuffling seed.
        pad_id: the tokenizer's padding id.

    Returns:
        Dataset of ``(inputs, labels)``: inputs a dict of ``(B, T)`` int32 ``input_ids``,
        ``attention_mask`` (1 on real tokens) and ``token_type_ids``; ``T`` the batch maximum;
        ``features.extra`` inputs padded with :data:`PAD_LABEL`.
    """
    import tensorflow as tf

    n = len(features)
    if n == 0:
        raise DataError("no training examples")
    inputs = {
        "input_ids": _ragged(features.input_ids),
        "token_type_ids": _ragged(features.token_type_ids),
        **{k: _ragged(v) for k, v in features.extra.items()},
    }
    if isinstance(labels, Mapping):
        labels = {k: _label_tensor(v) for k, v in labels.items()}
    else:
        labels = _label_tensor(labels)

    def with_mask(x, y):
        return {**x, "attention_mask": tf.ones_like(x["input_ids"])}, y

    ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(with_mask, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    padding = (
        {
            "input_ids": tf.constant(pad_id, tf.int32),
            "token_type_ids": tf.constant(0, tf.int32),
            "attention_mask": tf.constant(0, tf.int32),
            **{k: tf.constant(PAD_LABEL, tf.int32) for k in features.extra},
        },
        tf.nest.map_structure(
            lambda v: tf.constant(PAD_LABEL if isinstance(v, tf.RaggedTensor) else 0, tf.int32),
            labels,
        ),
    )
    ds = ds.padded_batch(batch_size, padding_values=padding, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


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
        out = model.predict_on_batch(pad_inputs(features, index, pad_id=pad_id))
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
