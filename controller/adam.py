"""Adam whose update is a pure function of explicit slot variables.

Keras' Adam is a Python object that a traced function would capture, forcing a
fresh trace per controller; with slots passed in as arguments, one traced train
step serves every controller of the same shape. Slots exist from construction,
so a checkpoint restores them exactly (no deferred restoration).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class AdamHyper:
    """Adam's constants (Keras' defaults for betas and epsilon)."""

    learning_rate: float
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    global_clipnorm: float | None = None


class AdamSlots(NamedTuple):
    step: tf.Variable
    first_moments: tuple[tf.Variable, ...]
    second_moments: tuple[tf.Variable, ...]


class AdamState(tf.Module):
    """Step counter and moment estimates for a fixed list of variables."""

    def __init__(self, variables: Sequence[tf.Variable]):
        super().__init__(name="adam")
        with self.name_scope:
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.first_moments = tuple(
                tf.Variable(tf.zeros_like(v), trainable=False, name="m")
                for v in variables
            )
            self.second_moments = tuple(
                tf.Variable(tf.zeros_like(v), trainable=False, name="v")
                for v in variables
            )

    @property
    def slots(self) -> AdamSlots:
        return AdamSlots(self.step, self.first_moments, self.second_moments)


def apply_adam(
    hyper: AdamHyper,
    slots: AdamSlots,
    variables: Sequence[tf.Variable],
    gradients: Sequence[tf.Tensor | tf.IndexedSlices | None],
) -> None:
    """One Adam step (graph-friendly); a ``None`` gradient counts as zero."""
    gradients = [
        tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
        for v, g in zip(variables, gradients, strict=True)
    ]
    if hyper.global_clipnorm is not None:
        gradients, _ = tf.clip_by_global_norm(gradients, hyper.global_clipnorm)
    step = tf.cast(slots.step.assign_add(1), tf.float32)
    alpha = (
        hyper.learning_rate
        * tf.sqrt(1.0 - tf.pow(hyper.beta_2, step))
        / (1.0 - tf.pow(hyper.beta_1, step))
    )
    for variable, gradient, m, v in zip(
        variables, gradients, slots.first_moments, slots.second_moments, strict=True
    ):
        m.assign(hyper.beta_1 * m + (1.0 - hyper.beta_1) * gradient)
        v.assign(hyper.beta_2 * v + (1.0 - hyper.beta_2) * tf.square(gradient))
        variable.assign_sub(alpha * m / (tf.sqrt(v) + hyper.epsilon))
