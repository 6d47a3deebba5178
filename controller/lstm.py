"""The learning controller: LSTM policy trained by REINFORCE (default) or PPO.

REINFORCE uses an exponential-moving-average reward baseline and an entropy
bonus, the standard recipe of NAS with RL (Zoph & Le; NASNet). PPO with ratio
clipping is MnasNet's choice; it reuses each batch for several epochs, which
is where its sample efficiency comes from.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import tensorflow as tf

from mnas.controller.adam import AdamHyper, AdamSlots, AdamState, apply_adam
from mnas.controller.base import Controller, Proposal
from mnas.controller.config import ControllerConfig
from mnas.controller.policy import LSTMPolicy, PolicySpec, PolicyWeights, unroll
from mnas.search_space.decision import Decision

Algorithm = Literal["reinforce", "ppo"]
ALGORITHMS: tuple[str, ...] = ("reinforce", "ppo")


@dataclasses.dataclass(frozen=True)
class _LossSpec:
    """Static parts of the loss; with the policy spec, the train-step cache key."""

    algorithm: str
    entropy_weight: float
    ppo_clip: float


class LSTMController(Controller):
    """LSTM policy in the TF graph, learning from batches of rewards."""

    def __init__(
        self,
        decisions: Sequence[Decision],
        config: ControllerConfig | None = None,
        algorithm: Algorithm = "reinforce",
    ):
        if algorithm not in ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}"
            )
        self._algorithm = algorithm
        config = config or ControllerConfig()
        if not isinstance(config, ControllerConfig):
            raise TypeError(
                f"config must be a ControllerConfig, got {type(config).__name__}"
            )
        super().__init__(decisions, config.resolve(algorithm))
        cfg = self._config
        spec = PolicySpec.from_decisions(
            self._decisions,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            embedding_size=cfg.embedding_size,
            temperature=cfg.temperature,
            tanh_constant=cfg.tanh_constant,
            share_embeddings=cfg.share_embeddings,
        )
        self._policy = LSTMPolicy(spec, init_range=cfg.init_range, seed=cfg.seed)
        self._variables = tuple(_flatten(self._policy.weights))
        self._adam = AdamState(self._variables)
        self._baseline = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self._baseline_ready = tf.Variable(False, trainable=False)
        self._train_step = _train_step_function(
            spec,
            _LossSpec(algorithm, float(cfg.entropy_weight), float(cfg.ppo_clip)),
            AdamHyper(cfg.learning_rate, global_clipnorm=cfg.grad_clip_norm),
        )

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self._algorithm

    @property
    def algorithm(self) -> str:
        return self._algorithm

    # ------------------------------------------------------------- queries

    def log_prob(self, actions: Sequence[int]) -> float:
        log_prob, _ = self._policy.log_prob_and_entropy(self._as_batch(actions))
        return float(log_prob.numpy()[0])

    def entropy(self, actions: Sequence[int]) -> float:
        """Summed per-step entropies along ``actions``: the policy's uncertainty."""
        _, entropy = self._policy.log_prob_and_entropy(self._as_batch(actions))
        return float(entropy.numpy()[0])

    def most_likely_actions(self) -> tuple[int, ...]:
        """Greedy architecture: the policy's argmax at every step."""
        return tuple(int(a) for a in self._policy.most_likely().numpy())

    def _as_batch(self, actions: Sequence[int]) -> tf.Tensor:
        return tf.constant([self._check_actions(actions)], dtype=tf.int32)

    # ---------------------------------------------------------- controller

    def _trackables(self) -> dict[str, object]:
        return {
            "policy": self._policy,
            "optimizer": self._adam,
            "baseline": self._baseline,
            "baseline_ready": self._baseline_ready,
        }

    def _sample(
        self, first_id: int, count: int
    ) -> Sequence[tuple[Sequence[int], float]]:
        seed = tf.constant([self._config.seed, first_id], dtype=tf.int32)
        actions, log_prob, _ = self._policy.sample(seed, count)
        return list(
            zip(actions.numpy().tolist(), log_prob.numpy().tolist(), strict=True)
        )

    def _update(self, batch: Sequence[tuple[Proposal, float]]) -> dict[str, float]:
        actions = tf.constant([p.actions for p, _ in batch], dtype=tf.int32)
        old_log_prob = tf.constant([p.log_prob for p, _ in batch], dtype=tf.float32)
        rewards = np.array([r for _, r in batch], dtype=np.float64)
        mean_reward = float(rewards.mean())
        if not bool(self._baseline_ready.numpy()):
            # Starting at the first batch's mean avoids a large, biased first step.
            self._baseline.assign(mean_reward)
            self._baseline_ready.assign(True)
        baseline = float(self._baseline.numpy())
        advantages = tf.constant(rewards - baseline, dtype=tf.float32)
        epochs = self._config.ppo_epochs if self._algorithm == "ppo" else 1
        # Trace for any batch size up front (a cache hit after the first time).
        self._train_step.get_concrete_function(
            self._policy.weights,
            self._adam.slots,
            self._policy.actions_spec,
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.float32),
        )
        for _ in range(epochs):
            loss, entropy, clip_fraction = self._train_step(
                self._policy.weights,
                self._adam.slots,
                actions,
                advantages,
                old_log_prob,
            )
        decay = self._config.baseline_decay
        self._baseline.assign(decay * baseline + (1.0 - decay) * mean_reward)
        stats = {
            "loss": float(loss.numpy()),
            "entropy": float(entropy.numpy()),
            "baseline": float(self._baseline.numpy()),
            "mean_reward": mean_reward,
        }
        if self._algorithm == "ppo":
            stats["clip_fraction"] = float(clip_fraction.numpy())
        return stats


def _flatten(weights: PolicyWeights) -> list[tf.Variable]:
    return tf.nest.flatten(weights)


@functools.cache
def _train_step_function(
    spec: PolicySpec, loss_spec: _LossSpec, hyper: AdamHyper
) -> Callable[..., tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """One traced optimizer step, shared by all controllers of the same shape.

    (weights, slots, actions, advantages, old_log_prob) ->
    (loss, mean entropy, PPO clip fraction).
    """

    @tf.function
    def train_step(
        weights: PolicyWeights,
        slots: AdamSlots,
        actions: tf.Tensor,
        advantages: tf.Tensor,
        old_log_prob: tf.Tensor,
    ):
        variables = _flatten(weights)
        with tf.GradientTape() as tape:
            _, log_prob, entropy = unroll(
                spec,
                weights,
                tf.shape(actions)[0],
                lambda step, dist: tf.gather(actions, step, axis=1),
            )
            mean_entropy = tf.reduce_mean(entropy)
            if loss_spec.algorithm == "ppo":
                epsilon = loss_spec.ppo_clip
                ratio = tf.exp(log_prob - old_log_prob)
                clipped = tf.clip_by_value(ratio, 1.0 - epsilon, 1.0 + epsilon)
                surrogate = tf.minimum(ratio * advantages, clipped * advantages)
                clip_fraction = tf.reduce_mean(
                    tf.cast(tf.abs(ratio - 1.0) > epsilon, tf.float32)
                )
            else:
                surrogate = advantages * log_prob
                clip_fraction = tf.constant(0.0)
            loss = -tf.reduce_mean(surrogate) - loss_spec.entropy_weight * mean_entropy
        gradients = tape.gradient(loss, variables)
        apply_adam(hyper, slots, variables, gradients)
        return loss, mean_entropy, clip_fraction

    return train_step
