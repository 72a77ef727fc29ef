"""BERT's optimizer: AdamW with a linear warm-up then linear decay of the learning rate.

As ``optimization.py`` of google-research/bert (Devlin et al., 2019): for step ``t`` (0-based,
the number of updates already made) out of ``T`` with ``W`` warm-up steps and peak rate ``η``,

    lr(t) = η · t / W                      if t < W
    lr(t) = η · max(0, (T - t) / (T - W))  otherwise,

with decoupled weight decay (Loshchilov & Hutter, 2019) on every weight but biases and
LayerNorm parameters, and gradients clipped to a global norm. The task head's weights may move
at ``head_lr_multiplier`` times the rate (a head that starts from scratch, such as the biaffine
parser's, learns slowly at BERT's rates; SuPar's BERT parsers use 20 times, its ``lr_rate``).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .._keras import keras
from .config import FinetuneConfig

# Substrings of variable names that get no weight decay (BERT: "LayerNorm", "layer_norm", "bias").
NO_DECAY = ("LayerNorm", "layer_norm", "bias")


def warmup_decay_lr(step, peak: float, total_steps: int, warmup_steps: int) -> np.ndarray:
    """NumPy reference of the schedule (see the module docstring); ``step`` may be an array."""
    t = np.asarray(step, dtype=np.float64)
    warm = peak * t / max(warmup_steps, 1)
    decay = peak * np.maximum(0.0, (total_steps - t) / max(total_steps - warmup_steps, 1))
    return np.where(t < warmup_steps, warm, decay)


@keras.saving.register_keras_serializable(package="bert_repro")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then linear decay to 0 at
    ``total_steps`` (the formula in the module docstring).

    Args:
        peak: the learning rate reached at the end of warm-up.
        total_steps: number of optimizer steps of the run.
        warmup_steps: steps of linear warm-up (0: start at ``peak``).
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got "
                f"total_steps={total_steps}, warmup_steps={warmup_steps}"
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        t = tf.cast(step, tf.float32)
        peak = tf.constant(self.peak, tf.float32)
        warm = peak * t / float(max(self.warmup_steps, 1))
        decay = peak * tf.maximum(
            0.0, (float(self.total_steps) - t) / float(max(self.total_steps - self.warmup_steps, 1))
        )
        return tf.where(t < float(self.warmup_steps), warm, decay)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def warmup_steps_for(total_steps: int, warmup_fraction: float) -> int:
    """``ceil(fraction · total)`` warm-up steps (at least one when the fraction is positive)."""
    if warmup_fraction <= 0:
        return 0
    return min(total_steps, max(1, math.ceil(warmup_fraction * total_steps)))


@keras.saving.register_keras_serializable(package="bert_repro")
class ScaledAdamW(keras.optimizers.AdamW):
    """AdamW whose step on some variables is ``factor`` times the usual one.

    Adam's step ``lr · m̂ / (sqrt(v̂) + eps)`` is linear in ``lr``, so scaling the step is the
    same as running those variables at ``factor · lr`` (weight decay keeps the base rate).
    Call :meth:`scale` with the variables before the first step.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._factors: dict = {}

    def scale(self, variables, factor: float) -> None:
        """Make the steps on ``variables`` ``factor`` times larger."""
        for v in variables:
            self._factors[self._var_key(v)] = float(factor)

    def update_step(self, gradient, variable):
        factor = self._factors.get(self._var_key(variable))
        if factor is None or factor == 1.0:
            return super().update_step(gradient, variable)
        before = tf.identity(variable)
        super().update_step(gradient, variable)
        variable.assign_add((factor - 1.0) * (variable - before))


def build_optimizer(
    config: FinetuneConfig, total_steps: int, head_variables=()
) -> keras.optimizers.Optimizer:
    """AdamW over :class:`LinearWarmupDecay` with BERT's settings from ``config``; the
    ``head_variables`` step ``config.head_lr_multiplier`` times faster (:class:`ScaledAdamW`).

    Create it inside ``strategy.scope()`` when training under a distribution strategy.
    """
    schedule = LinearWarmupDecay(
        config.learning_rate, total_steps, warmup_steps_for(total_steps, config.warmup_fraction)
    )
    optimizer = ScaledAdamW(
        learning_rate=schedule,
        weight_decay=config.weight_decay,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=config.adam_epsilon,
        global_clipnorm=config.clip_norm,
        jit_compile=False,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    optimizer.scale(head_variables, config.head_lr_multiplier)
    return optimizer
