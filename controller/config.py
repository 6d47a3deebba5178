"""Hyper-parameters of the architecture controllers, validated once at creation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

# Seeds travel as int32 pairs through TF's stateless random ops.
MAX_SEED = 2**31 - 1

#: Per-algorithm defaults for fields left ``None``. They reach mean reward 0.9
#: on the 42-decision known-reward task in about 120-220 updates of batch 8
#: (tests/controller/test_lstm.py). A larger learning rate or a smaller
#: entropy weight collapses the policy onto a per-kind compromise before it
#: learns the blocks; PPO steps several times per batch, so it needs less of
#: both.
ALGORITHM_DEFAULTS: dict[str, dict[str, float]] = {
    "reinforce": {"learning_rate": 0.01, "entropy_weight": 0.005},
    "ppo": {"learning_rate": 0.005, "entropy_weight": 0.003},
}


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
    """One config for every controller kind, so a search can switch kinds freely.

    Fields a controller does not use (the random controller ignores all learning
    fields) are simply ignored by it.

    Attributes:
      batch_size: rewards per policy update; proposals whose trial failed do not
        count, so the batch is refilled by later proposals.
      seed: seeds weight initialization and sampling; same seed, same calls,
        same proposals.
      hidden_size: LSTM units per layer (100 in NASNet/MnasNet).
      num_layers: stacked LSTM layers.
      embedding_size: size of the previous-action embedding; ``None`` means
        ``hidden_size``.
      share_embeddings: one action-embedding table per decision kind instead
        of one per decision. Per-decision tables (the default) tell the LSTM
        which block it is in; with shared tables and shared heads the policy
        learns block-specific choices much more slowly.
      learning_rate: Adam step size; ``None`` picks the algorithm's tuned
        default (:data:`ALGORITHM_DEFAULTS`).
      baseline_decay: decay of the exponential-moving-average reward baseline.
      entropy_weight: weight of the entropy bonus (summed over decisions) that
        keeps the policy from collapsing early; ``None`` picks the algorithm's
        tuned default.
      temperature: logits are divided by this before sampling.
      tanh_constant: if set, logits become ``c * tanh(logits)`` (NASNet/ENAS
        logit clipping), bounding how peaked a head can get.
      ppo_clip: PPO ratio clipping epsilon (0.2 in the paper).
      ppo_epochs: optimizer passes over each batch with PPO.
      grad_clip_norm: clip gradients to this global norm; ``None`` disables.
      init_range: weights start uniform in ``[-init_range, init_range]``.
    """

    batch_size: int = 8
    seed: int = 0
    hidden_size: int = 100
    num_layers: int = 1
    embedding_size: int | None = None
    share_embeddings: bool = False
    learning_rate: float | None = None
    baseline_decay: float = 0.95
    entropy_weight: float | None = None
    temperature: float = 1.0
    tanh_constant: float | None = None
    ppo_clip: float = 0.2
    ppo_epochs: int = 4
    grad_clip_norm: float | None = None
    init_range: float = 0.1

    def __post_init__(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

        def positive_float(name: str, allow_none: bool = False) -> None:
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")

        for name in ("batch_size", "hidden_size", "num_layers", "ppo_epochs"):
            positive_int(name)
        if self.embedding_size is not None:
            positive_int("embedding_size")
        for name in ("temperature", "init_range"):
            positive_float(name)
        for name in ("learning_rate", "tanh_constant", "grad_clip_norm"):
            positive_float(name, allow_none=True)
        if not isinstance(self.share_embeddings, bool):
            raise ValueError(
                f"share_embeddings must be a bool, got {self.share_embeddings!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be in [0, {MAX_SEED}], got {self.seed}")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(
                f"baseline_decay must be in [0, 1), got {self.baseline_decay!r}"
            )
        if self.entropy_weight is not None and (
            isinstance(self.entropy_weight, bool)
            or not isinstance(self.entropy_weight, int | float)
            or not math.isfinite(self.entropy_weight)
            or self.entropy_weight < 0
        ):
            raise ValueError(
                f"entropy_weight must be a finite number >= 0, "
                f"got {self.entropy_weight!r}"
            )
        if not 0.0 < self.ppo_clip < 1.0:
            raise ValueError(f"ppo_clip must be in (0, 1), got {self.ppo_clip!r}")

    def resolve(self, algorithm: str) -> ControllerConfig:
        """A copy with every ``None`` default filled in for ``algorithm``."""
        if algorithm not in ALGORITHM_DEFAULTS:
            raise ValueError(
                f"algorithm must be one of {tuple(ALGORITHM_DEFAULTS)}, "
                f"got {algorithm!r}"
            )
        filled = {
            name: value
            for name, value in ALGORITHM_DEFAULTS[algorithm].items()
            if getattr(self, name) is None
        }
        return dataclasses.replace(self, **filled)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, for config files and checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ControllerConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, not ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown controller config keys: {unknown}")
        return cls(**values)
