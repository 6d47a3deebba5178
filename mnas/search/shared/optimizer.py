"""Adam that moves only the variables it is given a gradient for ("lazy").

A weight step on one path of the supernet trains that path's variables and
nothing else: TuNAS's unselected ops get zero gradients, but a momentum
optimizer would still move them (and decay their moments) on every step.
Here a step updates the moments and values of the variables it is handed
(``Supernet.path_variables``) with one fused op each; every other variable,
and its moments, stays exactly as it was. Bias correction counts all steps,
as in TF Addons' LazyAdam.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


class LazyAdam(tf.Module):
    """Adam moments for ``variables``; ``apply`` steps a subset of them."""

    def __init__(
        self,
        variables: Sequence[tf.Variable],
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ) -> None:
        super().__init__(name="lazy_adam")
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self._index = {id(v): i for i, v in enumerate(variables)}

    def apply(
        self,
        gradients: Sequence[tf.Tensor | None],
        variables: Sequence[tf.Variable],
        learning_rate: float,
    ) -> int:
        """One step on the pairs with a gradient; returns how many moved."""
        self.iterations.assign_add(1)
        t = tf.cast(self.iterations, tf.float32)
        beta_1_power = tf.pow(self.beta_1, t)
        beta_2_power = tf.pow(self.beta_2, t)
        lr = tf.constant(learning_rate, tf.float32)
        moved = 0
        for gradient, variable in zip(gradients, variables, strict=True):
            if gradient is None:
                continue
            i = self._index[id(variable)]
            tf.raw_ops.ResourceApplyAdam(
                var=_handle(variable),
                m=self.m[i].handle,
                v=self.v[i].handle,
                beta1_power=beta_1_power,
                beta2_power=beta_2_power,
                lr=lr,
                beta1=self.beta_1,
                beta2=self.beta_2,
                epsilon=self.epsilon,
                grad=gradient,
            )
            moved += 1
        return moved


def _handle(variable) -> tf.Tensor:
    """The resource handle of a ``tf.Variable`` or of a Keras variable's."""
    inner = getattr(variable, "value", None)
    return inner.handle if isinstance(inner, tf.Variable) else variable.handle
