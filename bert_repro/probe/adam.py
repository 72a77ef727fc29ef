"""Adam with one learning rate per slice of a stacked weight (Kingma & Ba, ICLR 2015).

Several independent probes stacked along a leading axis (weights ``(K, ...)``) train in one
step, yet each keeps its own learning-rate schedule. The update is tf-keras's own
(``tf_keras/src/optimizers/adam.py``, dense gradients, no AMSGrad), with the learning rate
broadcast along the leading axis, so slice ``k`` follows exactly the trajectory that a separate
``keras.optimizers.Adam(learning_rate=lr[k])`` would give it::

    m_t   = m + (g - m) (1 - beta_1)
    v_t   = v + (g^2 - v) (1 - beta_2)
    alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
    w_t   = w - m_t alpha / (sqrt(v_t) + epsilon)

(epsilon outside the square root and not bias-corrected, as tf-keras has it; ``t`` is the
1-based step). A slice whose learning rate is 0 keeps its weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

__all__ = ["SlicedAdam", "adam_update"]


def adam_update(
    variable: tf.Tensor,
    gradient: tf.Tensor,
    m: tf.Tensor,
    v: tf.Tensor,
    learning_rate,
    step,
    *,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One Adam step as tf-keras computes it, with a learning rate per leading slice.

    Args:
        variable, gradient, m, v: ``(K, ...)`` float32 weight, its gradient and Adam's first
            and second moments before the step.
        learning_rate: a scalar, or ``(K,)`` one rate per slice.
        step: the 1-based step number ``t`` (scalar).
        beta_1, beta_2, epsilon: Adam's constants (tf-keras defaults).

    Returns:
        ``(variable_t, m_t, v_t)``, each shaped like ``variable``.
    """
    dtype = variable.dtype
    lr = tf.cast(learning_rate, dtype)
    if lr.shape.rank:  # (K,) -> (K, 1, ..., 1)
        lr = tf.reshape(lr, [-1] + [1] * (variable.shape.rank - 1))
    t = tf.cast(step, dtype)
    beta_1_power = tf.pow(tf.cast(beta_1, dtype), t)
    beta_2_power = tf.pow(tf.cast(beta_2, dtype), t)
    alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)  # (K, 1, ...) or scalar
    m = m + (gradient - m) * (1 - beta_1)
    v = v + (tf.square(gradient) - v) * (1 - beta_2)
    return variable - (m * alpha) / (tf.sqrt(v) + epsilon), m, v


class SlicedAdam(tf.Module):
    """Adam state (moments, step count) for stacked weights, updated by :func:`adam_update`.

    Args:
        beta_1, beta_2, epsilon: Adam's constants (tf-keras defaults).

    Call :meth:`apply_gradients` from a compiled step; the learning rates are an argument of
    each step (e.g. a variable the caller lowers between epochs), one ``(K,)`` vector per weight.
    """

    def __init__(
        self,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        name: str = "sliced_adam",
    ):
        super().__init__(name=name)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self._moments: list[tuple[tf.Variable, tf.Variable]] = []

    def build(self, variables: Sequence[tf.Variable]) -> None:
        """Create zero moments ``m``, ``v`` for each of ``variables`` (once)."""
        if self._moments:
            return
        for var in variables:
            name = var.name.split(":")[0].replace("/", "_")
            self._moments.append(
                (
                    tf.Variable(tf.zeros_like(var), trainable=False, name=f"{name}_m"),
                    tf.Variable(tf.zeros_like(var), trainable=False, name=f"{name}_v"),
                )
            )

    def apply_gradients(
        self,
        gradients: Sequence[tf.Tensor],
        variables: Sequence[tf.Variable],
        learning_rates: Sequence[tf.Tensor],
    ) -> None:
        """One step on every variable; ``learning_rates[i]`` is ``(K_i,)`` (or a scalar).

        Under a ``tf.distribute`` strategy (variables and this optimizer built in its scope),
        call it in replica context with gradients already summed over the replicas (the same
        on each): every copy of each variable then takes the same step
        (``strategy.extended.update``, as Keras optimizers do).
        """
        self.build(variables)
        context = tf.distribute.get_replica_context()
        if context is None:  # cross-replica context
            self._apply(tf.distribute.get_strategy(), gradients, variables, learning_rates)
        else:
            context.merge_call(self._apply, args=(gradients, variables, learning_rates))

    def _apply(self, strategy, gradients, variables, learning_rates) -> None:
        step = self.iterations + 1
        for grad, var, lr, (m, v) in zip(
            gradients, variables, learning_rates, self._moments, strict=True
        ):
            strategy.extended.update(var, self._update, args=(grad, m, v, lr, step), group=False)
        self.iterations.assign_add(1)

    def _update(self, var, grad, m, v, lr, step) -> None:
        """One variable's step (on one copy of it, under a strategy)."""
        new_var, new_m, new_v = adam_update(
            var, grad, m, v, lr, step,
            beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
        )  # fmt: skip
        m.assign(new_m)
        v.assign(new_v)
        var.assign(new_var)

    def get_config(self) -> dict:
        return {
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> SlicedAdam:
        return cls(**config)
