"""Uniform random search: the baseline every learned controller must beat."""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from mnas.controller.base import Controller, Proposal
from mnas.controller.config import ControllerConfig
from mnas.search_space.decision import Decision


class RandomController(Controller):
    """Samples every decision uniformly and independently; never learns.

    It still counts updates per full batch of rewards, so the search loop treats
    it exactly like a learning controller (and resumes it the same way).
    """

    kind = "random"

    def __init__(
        self, decisions: Sequence[Decision], config: ControllerConfig | None = None
    ):
        super().__init__(decisions, config or ControllerConfig())
        self._num_choices = tf.constant(
            [d.num_choices for d in self._decisions], dtype=tf.float64
        )
        self._log_prob = -sum(math.log(d.num_choices) for d in self._decisions)

    def _sample(
        self, first_id: int, count: int
    ) -> Sequence[tuple[Sequence[int], float]]:
        # One seed per proposal id: batching never changes what is proposed.
        return [
            (self._sample_one(proposal_id), self._log_prob)
            for proposal_id in range(first_id, first_id + count)
        ]

    def _sample_one(self, proposal_id: int) -> list[int]:
        seed = tfp.random.sanitize_seed((self._config.seed, proposal_id), salt="random")
        uniform = tf.random.stateless_uniform(
            [len(self._decisions)], seed=seed, dtype=tf.float64
        )
        actions = tf.cast(tf.floor(uniform * self._num_choices), tf.int32)
        # Guard the (measure-zero) rounding edge at uniform == 1 - ulp.
        actions = tf.minimum(actions, tf.cast(self._num_choices, tf.int32) - 1)
        return actions.numpy().tolist()

    def _update(self, batch: Sequence[tuple[Proposal, float]]) -> dict[str, float]:
        return {
            "mean_reward": float(sum(r for _, r in batch) / len(batch)),
            "entropy": -self._log_prob,  # constant: the uniform policy's entropy
        }

    def log_prob(self, actions: Sequence[int]) -> float:
        self._check_actions(actions)
        return self._log_prob
