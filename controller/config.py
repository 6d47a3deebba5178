"""Hyper-parameters of the architecture controllers, validated once at creation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

from mnas.search_space.validation import (
    check_bool,
    check_fields,
    check_int,
    check_real,
)

# Seeds travel as int32 pairs through TF's stateless random ops.
MAX_SEED = 2**31 - 1
#: Integer fields -> their upper bound (all are >= 1): far above any useful
#: setting, low enough that a typo cannot allocate a huge policy.
_INT_BOUNDS = {
    "batch_size": 4096,
    "hidden_size": 4096,
    "num_layers": 16,
    "embedding_size": 4096,
    "ppo_epochs": 100,
}


class ControllerConfigError(ValueError):
    """A ControllerConfig field of the wrong type or out of range."""


#: The controllers a search can name (``--controller``).
ControllerKind = Literal["reinforce", "ppo", "random"]
CONTROLLER_KINDS: tuple[str, ...] = ("reinforce", "ppo", "random")

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
        def check(checked: Callable, name: str, *args, **kwargs) -> None:
            value = checked(
                name, getattr(self, name), *args, error=ControllerConfigError, **kwargs
            )
            object.__setattr__(self, name, value)

        for name, high in _INT_BOUNDS.items():
            check(check_int, name, 1, high, allow_none=name == "embedding_size")
        check(check_int, "seed", 0, MAX_SEED)
        check(check_bool, "share_embeddings")
        for name in ("temperature", "init_range"):
            check(check_real, name, 0.0, low_open=True)
        for name in ("learning_rate", "tanh_constant", "grad_clip_norm"):
            check(check_real, name, 0.0, low_open=True, allow_none=True)
        check(check_real, "baseline_decay", 0.0, 1.0, high_open=True)
        check(check_real, "entropy_weight", 0.0, allow_none=True)
        check(check_real, "ppo_clip", 0.0, 1.0, low_open=True, high_open=True)

    def resolve(self, algorithm: str) -> ControllerConfig:
        """A copy with every ``None`` default filled in for ``algorithm``."""
        if not isinstance(algorithm, str) or algorithm not in ALGORITHM_DEFAULTS:
            raise ControllerConfigError(
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
        if not isinstance(values, Mapping):
            raise ControllerConfigError(
                f"a controller config must be a mapping, got {type(values).__name__}"
            )
        check_fields(cls, values, "controller config keys", error=ControllerConfigError)
        return cls(**values)
