"""Structural probes (Hewitt & Manning, "A Structural Probe for Finding Syntax in Word
Representations", NAACL 2019) as Keras models.

Both probes hold one matrix ``B`` of shape ``(model_dim, probe_rank)``, initialised
``U(-0.05, 0.05)``, and read word vectors ``h`` (rows of ``(batch, max_words, model_dim)``):

* :class:`TwoWordProbe`: ``d_B(h_i, h_j) = (B^T(h_i - h_j))^T (B^T(h_i - h_j))``, the squared
  distance after projection, trained to match tree distances;
* :class:`OneWordProbe`: ``||B^T h_i||^2``, the squared norm after projection, trained to match
  tree depths.

(The paper writes ``B h`` with ``B`` of shape ``(rank, dim)``; here the stored matrix is its
transpose, as in the reference code.) Padding rows give values too; mask them with
:func:`bert_repro.probe.loss.build_label_mask`.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from .._keras import keras
from ..errors import ConfigError, check_choice
from ..io import atomic_write_json, read_json
from .kinds import PROBE_KINDS, ProbeKind

INIT_RANGE = 0.05


def pairwise_sq_distances(projected: tf.Tensor) -> tf.Tensor:
    """Squared Euclidean distance between every pair of rows, per batch element.

    Computed as ``|a|^2 + |b|^2 - 2 a.b`` after subtracting each sentence's mean row (distances
    do not change under translation, and centring keeps the cancellation error at the scale
    of the distances, not of the norms); clamped at 0, with an exact zero diagonal.

    Args:
        projected: ``(batch, max_words, rank)``.

    Returns:
        ``(batch, max_words, max_words)``.
    """
    x = projected - tf.reduce_mean(projected, axis=1, keepdims=True)  # (B, W, R)
    sq = tf.reduce_sum(tf.square(x), axis=-1)  # (B, W)
    gram = tf.matmul(x, x, transpose_b=True)  # (B, W, W)
    d = sq[:, :, None] + sq[:, None, :] - 2.0 * gram
    d = tf.maximum(d, 0.0)
    return tf.linalg.set_diag(d, tf.zeros_like(sq))


def squared_norms(projected: tf.Tensor) -> tf.Tensor:
    """``(batch, max_words, rank)`` -> ``(batch, max_words)`` squared norms of the rows."""
    return tf.reduce_sum(tf.square(projected), axis=-1)


class _Probe(keras.Model):
    """A linear map ``B: (model_dim, probe_rank)`` applied to word vectors."""

    def __init__(self, model_dim: int, probe_rank: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if int(model_dim) < 1 or int(probe_rank) < 1:
            raise ValueError(
                f"model_dim and probe_rank must be >= 1, got {model_dim}, {probe_rank}"
            )
        self.model_dim = int(model_dim)
        self.probe_rank = int(probe_rank)
        self.seed = None if seed is None else int(seed)
        self.proj = self.add_weight(
            name="proj",
            shape=(self.model_dim, self.probe_rank),
            initializer=keras.initializers.RandomUniform(-INIT_RANGE, INIT_RANGE, seed=self.seed),
            trainable=True,
        )
        self.built = True  # the weights exist: load_weights works before the first call

    def project(self, inputs: tf.Tensor) -> tf.Tensor:
        """``(batch, max_words, model_dim)`` -> ``(batch, max_words, probe_rank)``."""
        inputs = tf.convert_to_tensor(inputs, dtype=self.proj.dtype)
        return tf.matmul(inputs, self.proj)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model_dim": self.model_dim,
            "probe_rank": self.probe_rank,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        return cls(**config)


@keras.saving.register_keras_serializable(package="bert_repro")
class TwoWordProbe(_Probe):
    """Distance probe: squared distances between projected word vectors.

    ``d_B(h_i, h_j) = (B^T(h_i - h_j))^T (B^T(h_i - h_j))``

    Args:
        model_dim: width of the word vectors (``model.config.hidden_size``).
        probe_rank: the rank of ``B`` (128 in the paper; ``model_dim`` for full rank).
        seed: seed of the ``U(-0.05, 0.05)`` initialiser.

    Call:
        ``(batch, max_words, model_dim)`` -> ``(batch, max_words, max_words)`` float32.
    """

    def call(self, inputs):
        return pairwise_sq_distances(self.project(inputs))


@keras.saving.register_keras_serializable(package="bert_repro")
class OneWordProbe(_Probe):
    """Depth probe: squared norms of projected word vectors, ``||B^T h_i||^2``.

    Args:
        model_dim: width of the word vectors (``model.config.hidden_size``).
        probe_rank: the rank of ``B``.
        seed: seed of the ``U(-0.05, 0.05)`` initialiser.

    Call:
        ``(batch, max_words, model_dim)`` -> ``(batch, max_words)`` float32.
    """

    def call(self, inputs):
        return squared_norms(self.project(inputs))


PROBE_CLASSES = {"distance": TwoWordProbe, "depth": OneWordProbe}


def make_probe(kind: ProbeKind, model_dim: int, probe_rank: int, seed: int | None = None) -> _Probe:
    """A new :class:`TwoWordProbe` (``kind="distance"``) or :class:`OneWordProbe` (``"depth"``)."""
    check_choice("kind", kind, PROBE_KINDS)
    return PROBE_CLASSES[kind](model_dim, probe_rank, seed=seed)


def probe_kind(probe: _Probe) -> ProbeKind:
    """``"distance"`` or ``"depth"``, the kind of a probe object."""
    for kind, cls in PROBE_CLASSES.items():
        if isinstance(probe, cls):
            return kind
    raise ConfigError(f"{type(probe).__name__} is not a structural probe")


def save_probe(probe: _Probe, folder: str | os.PathLike) -> Path:
    """Save a probe into ``folder``: weights as the TF checkpoint ``<folder>/model`` (so
    ``probe.load_weights(<folder>/model)`` works, as in the seed notebooks) without optimizer
    state, and its kind and ``get_config()`` as ``<folder>/config.json``.

    Returns:
        The weights' path prefix ``<folder>/model``.
    """
    folder = Path(folder)
    kind = probe_kind(probe)
    clean = make_probe(kind, probe.model_dim, probe.probe_rank, seed=probe.seed)
    clean.set_weights(probe.get_weights())  # a fresh copy: no optimizer slots in the file
    folder.mkdir(parents=True, exist_ok=True)
    clean.save_weights(str(folder / "model"))
    atomic_write_json(folder / "config.json", {"kind": kind, "config": clean.get_config()})
    return folder / "model"


def load_probe(folder: str | os.PathLike, kind: ProbeKind | None = None) -> _Probe:
    """Load a probe saved by :func:`save_probe` (optionally checking its kind)."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.exists():
        raise ConfigError(f"{folder} holds no saved probe (no config.json)")
    info = read_json(config_file)
    if kind is not None and info["kind"] != kind:
        raise ConfigError(f"{folder} holds a {info['kind']} probe, not a {kind} probe")
    probe = PROBE_CLASSES[info["kind"]].from_config(info["config"])
    probe.load_weights(str(folder / "model"))
    return probe
