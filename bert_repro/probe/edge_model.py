"""Edge probes (Tenney et al., ICLR 2019) of several layers as one Keras layer, stacked weights.

One edge probe reads frozen word vectors and, per span role ``r`` (``"word"``; or
``"dependent"``, ``"head"``):

1. **input**: one hidden state ``h_k``, or the scalar mix of several,
   ``h = gamma * sum_l softmax(a)_l h_l`` (:mod:`.scalar_mix`; ``a``, ``gamma`` learned);
2. **projection** per role: ``p_r = W_r h + b_r``, ``W_r`` of shape ``(H, D)``, ``D`` = 256;
3. **span pooling**: Tenney's self-attentive pooling over the span's tokens. Here every span is
   one word and its vector is already the mean of the word's wordpieces (the word-feature
   cache), so pooling over the span's one vector is the identity (softmax over a single
   attention score is 1) and is not computed;
4. **classifier**: the span vectors concatenated, ``[p_1; p_2]``, into jiant's two-layer MLP:
   ``logits = W_2 dropout(LayerNorm(tanh(W_1 [p_1; p_2] + b_1))) + b_2`` (hidden 256,
   LayerNorm eps 1e-5, dropout 0.2).

:class:`StackedEdgeProbes` holds ``P`` such probes with their weights stacked along a leading
axis (``(P, ...)``), all reading one ``(S, R, N, H)`` batch of ``S`` hidden states: probe ``p``
reads its own states through its own slice of every weight, so its outputs and gradients are
those it would have alone. Each slice is initialised as a lone probe with the same seed would
be (Glorot-uniform kernels, zero biases, mix logits 0, ``gamma`` 1), and dropout draws one
mask per step from ``(seed, step)``, the same for every probe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .._keras import keras
from ..errors import ConfigError
from .edge_config import EdgeHead
from .scalar_mix import masked_mix_weights_tf

__all__ = ["LAYER_NORM_EPSILON", "StackedEdgeProbes", "edge_losses", "layer_norm"]

LAYER_NORM_EPSILON = 1e-5  # torch.nn.LayerNorm's, as jiant's classifier


def layer_norm(x: tf.Tensor, scale: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over the last axis (biased variance).

    Args:
        x: ``(P, N, F)``; scale, bias: ``(P, F)``.
    """
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    normed = (x - mean) * tf.math.rsqrt(var + LAYER_NORM_EPSILON)
    return normed * scale[:, None] + bias[:, None]


def edge_losses(logits: tf.Tensor, labels: tf.Tensor, count=None) -> tf.Tensor:
    """``(P,)`` per probe, the mean softmax cross-entropy over the batch's ``N`` examples.

    Args:
        logits: ``(P, N, C)``; labels: ``(N,)`` int.
        count: divide the sum by this instead (a replica holding ``N`` rows of a batch of
            ``count``: the replicas' results add up to the batch's mean).
    """
    labels = tf.broadcast_to(tf.cast(labels, tf.int32)[None], tf.shape(logits)[:2])
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    if count is None:
        return tf.reduce_mean(ce, axis=1)
    return tf.reduce_sum(ce, axis=1) / tf.cast(count, ce.dtype)


def _sub_seed(seed: int | None, index: int) -> int | None:
    """A distinct seed for each weight, derived from the probe seed."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), index]).generate_state(1)[0] % (2**31 - 1))


@keras.saving.register_keras_serializable(package="bert_repro")
class StackedEdgeProbes(keras.layers.Layer):
    """``P`` independent edge probes over the same batch, as stacked weights.

    Args:
        probes: per probe, the positions (into the batch's ``S`` states) it reads.
        mix: per probe, whether it is a scalar mix (learned ``a``, ``gamma``) of its states;
            a probe that is not must read exactly one state.
        num_states: ``S``, the hidden states of each batch.
        model_dim: ``H``, the word vectors' width.
        num_spans: ``R``, 1 (POS) or 2 (dependent, head).
        num_labels: ``C``, the classes.
        head: the shape past the input (:class:`~bert_repro.probe.edge_config.EdgeHead`:
            ``projection_dim`` ``D``, each span's projection, 256; ``hidden_dim``, the MLP's
            hidden width, 256; ``dropout``, the MLP's dropout rate, 0.2); its fields are also
            accepted as keywords (``projection_dim=8``), as the config holds them.
        seed: seed of every slice's initialisation and of the dropout masks.

    Call:
        ``(features (S, R, N, H), training=False, step=0)`` -> logits ``(P, N, C)``.
    """

    def __init__(
        self,
        probes: Sequence[Sequence[int]],
        mix: Sequence[bool],
        num_states: int,
        model_dim: int,
        num_spans: int,
        num_labels: int,
        *,
        head: EdgeHead | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        head = EdgeHead.take(head, kwargs)
        super().__init__(**kwargs)
        self.probes = [[int(s) for s in states] for states in probes]
        self.mix = [bool(m) for m in mix]
        self.num_states = int(num_states)
        self.model_dim = int(model_dim)
        self.num_spans = int(num_spans)
        self.num_labels = int(num_labels)
        self.head = head
        self.projection_dim = head.projection_dim
        self.hidden_dim = head.hidden_dim
        self.dropout = head.dropout
        self.seed = None if seed is None else int(seed)
        self._check()
        p = len(self.probes)
        allowed = np.zeros((p, self.num_states), dtype=bool)
        for i, states in enumerate(self.probes):
            allowed[i, states] = True
        self._allowed = tf.constant(allowed)
        self._is_mix = tf.constant(self.mix)
        # single-state probes read their state directly (a gather: no gradient flows back into
        # their input), the mixes through their coefficients; then back into probe order
        self._single_rows = [i for i, m in enumerate(self.mix) if not m]
        self._single_states = [self.probes[i][0] for i in self._single_rows]
        self._mix_rows = [i for i, m in enumerate(self.mix) if m]
        order = np.argsort(self._single_rows + self._mix_rows)
        self._order = None if np.array_equal(order, np.arange(p)) else order.tolist()
        h, r, d = self.model_dim, self.num_spans, self.projection_dim
        f, c = self.hidden_dim, self.num_labels
        self.mix_logits = self._weight("mix_logits", (self.num_states,), "zeros")
        self.mix_scale = self._weight("mix_scale", (), "ones")
        self.proj_kernel = self._weight("proj_kernel", (r, h, d), "glorot", index=1)
        self.proj_bias = self._weight("proj_bias", (r, d), "zeros")
        self.hidden_kernel = self._weight("hidden_kernel", (r * d, f), "glorot", index=2)
        self.hidden_bias = self._weight("hidden_bias", (f,), "zeros")
        self.norm_scale = self._weight("norm_scale", (f,), "ones")
        self.norm_bias = self._weight("norm_bias", (f,), "zeros")
        self.out_kernel = self._weight("out_kernel", (f, c), "glorot", index=3)
        self.out_bias = self._weight("out_bias", (c,), "zeros")
        self.built = True

    def _check(self) -> None:
        if not self.probes or len(self.mix) != len(self.probes):
            raise ConfigError(
                f"give one mix flag per probe and at least one probe: {len(self.probes)} probes, "
                f"{len(self.mix)} flags"
            )
        if min(self.num_states, self.model_dim, self.num_spans, self.num_labels) < 1:
            raise ConfigError("num_states, model_dim, num_spans and num_labels must be >= 1")
        for states, mix in zip(self.probes, self.mix, strict=True):
            if not states or len(set(states)) != len(states):
                raise ConfigError(f"a probe's states must be distinct and not empty: {states}")
            if min(states) < 0 or max(states) >= self.num_states:
                raise ConfigError(f"states {states} out of range 0..{self.num_states - 1}")
            if not mix and len(states) != 1:
                raise ConfigError(f"a probe that is not a mix reads one state, not {states}")

    def _weight(self, name: str, shape: tuple, init: str, *, index: int = 0) -> tf.Variable:
        """A ``(P, *shape)`` weight whose every slice starts as a lone probe's would."""
        p = len(self.probes)
        seed = self.seed

        def initial(full_shape, dtype=None):
            dtype = dtype or tf.float32
            if init == "zeros":
                return tf.zeros(full_shape, dtype)
            if init == "ones":
                return tf.ones(full_shape, dtype)
            glorot = keras.initializers.GlorotUniform
            if len(shape) == 3:  # one (H, D) projection per span role, each its own draw
                one = tf.stack(
                    [glorot(seed=_sub_seed(seed, 10 * index + r))(shape[1:], dtype) for r in
                     range(shape[0])]
                )  # fmt: skip
            else:
                one = glorot(seed=_sub_seed(seed, 10 * index))(shape, dtype)
            return tf.tile(one[None], [p] + [1] * len(shape))

        return self.add_weight(name=name, shape=(p, *shape), initializer=initial, trainable=True)

    @property
    def num_probes(self) -> int:
        return len(self.probes)

    def mix_weights(self) -> tf.Tensor:
        """``(P, S)`` each probe's weights over the states: ``softmax(a)`` over its states for a
        mix (summing to 1), one-hot for a single-state probe."""
        return masked_mix_weights_tf(self.mix_logits, self._allowed)

    def coefficients(self) -> tf.Tensor:
        """``(P, S)`` what each state is multiplied by: ``gamma * s`` (mix) or one-hot."""
        scale = tf.where(self._is_mix, self.mix_scale, tf.ones_like(self.mix_scale))
        return self.mix_weights() * scale[:, None]

    def call(self, features, training=False, step=0, rows=None):
        """Logits of every probe.

        Args:
            features: ``(S, R, N, H)`` word vectors of the ``N`` examples' ``R`` spans at the
                ``S`` hidden states (:func:`bert_repro.probe.edge_data.iter_edge_batches`).
            training: apply dropout.
            step: the training step; with the seed, it draws the dropout mask.
            rows: ``(start, total)`` when the ``N`` examples are rows ``start..start+N-1`` of
                a batch of ``total`` (a replica's share): the dropout mask is that batch's
                rows, so a split batch drops out exactly as the whole one.

        Returns:
            ``(P, N, C)`` logits.
        """
        features = tf.convert_to_tensor(features, tf.float32)
        s, r, n = tf.unstack(tf.shape(features)[:3])
        p, h, d = self.num_probes, self.model_dim, self.projection_dim
        x = tf.reshape(self._inputs(tf.reshape(features, [s, -1])), [p * r, n, h])
        y = tf.matmul(x, tf.reshape(self.proj_kernel, [p * r, h, d]))  # (P*R, N, D)
        y = tf.reshape(y, [p, r, n, d]) + self.proj_bias[:, :, None]
        y = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [p, n, r * d])  # [p_1; p_2]
        z = tf.tanh(tf.matmul(y, self.hidden_kernel) + self.hidden_bias[:, None])  # (P, N, F)
        z = layer_norm(z, self.norm_scale, self.norm_bias)
        if training and self.dropout > 0:
            z = z * self._dropout_mask(n, step, rows)[None]
        return tf.matmul(z, self.out_kernel) + self.out_bias[:, None]  # (P, N, C)

    def _inputs(self, flat: tf.Tensor) -> tf.Tensor:
        """``(P, R*N*H)`` each probe's input from ``(S, R*N*H)`` states: its state, or
        ``gamma * sum_l s_l h_l`` (``coefficients() @ flat`` for the mixes only)."""
        parts = []
        if self._single_rows:
            parts.append(tf.gather(flat, self._single_states))
        if self._mix_rows:
            coefficients = tf.gather(self.coefficients(), self._mix_rows)
            parts.append(tf.matmul(coefficients, flat))
        x = parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)
        return x if self._order is None else tf.gather(x, self._order)

    def _dropout_mask(self, n, step, rows=None) -> tf.Tensor:
        """``(N, F)`` inverted-dropout mask of this step, shared by the probes (rows
        ``start..start+N-1`` of a batch of ``total``'s mask when ``rows=(start, total)``)."""
        seed = tf.stack([tf.constant(self.seed or 0, tf.int64), tf.cast(step, tf.int64)])
        total = n if rows is None else rows[1]
        draws = tf.random.stateless_uniform([total, self.hidden_dim], seed)
        keep = (draws if rows is None else draws[rows[0] : rows[0] + n]) >= self.dropout
        return tf.cast(keep, tf.float32) / (1.0 - self.dropout)

    def select(self, indices: Sequence[int]) -> StackedEdgeProbes:
        """A new layer holding the probes ``indices`` (their weights copied): e.g. one probe
        alone, to predict with or save."""
        indices = [int(i) for i in indices]
        config = self.get_config()
        config.update(probes=[self.probes[i] for i in indices], mix=[self.mix[i] for i in indices])
        out = StackedEdgeProbes.from_config(config)
        for mine, theirs in zip(out.weights, self.weights, strict=True):
            mine.assign(tf.gather(theirs, indices))
        return out

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            probes=[list(s) for s in self.probes],
            mix=list(self.mix),
            num_states=self.num_states,
            model_dim=self.model_dim,
            num_spans=self.num_spans,
            num_labels=self.num_labels,
            seed=self.seed,
            **dataclasses.asdict(self.head),  # projection_dim, hidden_dim, dropout
        )
        return config
