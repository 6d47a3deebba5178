"""Multi-objective rewards that trade accuracy against measured latency.

* ``soft`` (MnasNet): ACC * (LAT/T)^w, w = alpha if LAT <= T else beta,
  alpha = beta = -0.07: doubling latency is worth about +5% relative accuracy.
* ``hard`` (MnasNet): alpha = 0, beta = -1: no bonus under the target, a steep
  penalty above it.
* ``absolute`` (TuNAS): ACC + beta * |LAT/T - 1|, beta = -0.10 by default; it
  lands on the target without the repeated searches the soft reward needs.

With ``target_ratio`` set the latency is a ratio to a reference model timed
in the same rounds (``--target_ratio``): the formulas are the same with
LAT = the candidate's ratio and T = ``target_ratio`` (LAT/T is what they use).

Failed trials have no reward: callers never pass them here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from mnas.search_space.validation import check_real

RewardKind = Literal["soft", "hard", "absolute"]
REWARD_KINDS: tuple[str, ...] = ("soft", "hard", "absolute")
#: Exponents beyond this would let one latency outweigh any accuracy.
MAX_EXPONENT = 10.0
_DEFAULT_EXPONENTS = {
    "soft": (-0.07, -0.07),
    "hard": (0.0, -1.0),
    "absolute": (0.0, -0.10),
}


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """``alpha`` / ``beta`` default to the published values for ``kind``;
    ``target_ratio`` (latency relative to a reference) replaces ``target_ms``
    when set."""

    kind: RewardKind = "soft"
    target_ms: float = 75.0
    alpha: float | None = None
    beta: float | None = None
    target_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in REWARD_KINDS:
            raise ValueError(
                f"reward kind must be one of {REWARD_KINDS}, got {self.kind!r}"
            )
        if not (
            isinstance(self.target_ms, int | float) and math.isfinite(self.target_ms)
        ):
            raise ValueError(
                f"target latency must be a finite number, got {self.target_ms!r}"
            )
        if self.target_ms <= 0:
            raise ValueError(f"target latency must be > 0 ms, got {self.target_ms}")
        for name in ("alpha", "beta"):
            check_real(
                f"reward {name}",
                getattr(self, name),
                -MAX_EXPONENT,
                MAX_EXPONENT,
                allow_none=True,
            )
        if self.target_ratio is not None and not (
            isinstance(self.target_ratio, int | float)
            and not isinstance(self.target_ratio, bool)
            and math.isfinite(self.target_ratio)
            and self.target_ratio > 0
        ):
            raise ValueError(
                f"target ratio must be a finite number > 0, got {self.target_ratio!r}"
            )
        default_alpha, default_beta = _DEFAULT_EXPONENTS[self.kind]
        if self.alpha is None:
            object.__setattr__(self, "alpha", default_alpha)
        if self.beta is None:
            object.__setattr__(self, "beta", default_beta)

    def describe_target(self) -> str:
        """``target 7 ms`` or ``target 1x the reference``."""
        if self.target_ratio is not None:
            return f"target {self.target_ratio:g}x the reference"
        return f"target {self.target_ms:g} ms"


def compute_reward(
    accuracy: float,
    latency_ms: float,
    config: RewardConfig,
    ratio: float | None = None,
) -> float:
    """The reward of one completed trial; ``ratio`` (its latency relative to
    the reference) is what counts when ``config.target_ratio`` is set."""
    if not (math.isfinite(accuracy) and 0.0 <= accuracy <= 1.0):
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy!r}")
    if not (math.isfinite(latency_ms) and latency_ms > 0):
        raise ValueError(f"latency must be a positive number of ms, got {latency_ms!r}")
    latency, target = latency_ms, config.target_ms
    if config.target_ratio is not None:
        if ratio is None or not (math.isfinite(ratio) and ratio > 0):
            raise ValueError(
                "a reward with a target ratio needs the latency's ratio to the "
                f"reference, got {ratio!r}"
            )
        latency, target = ratio, config.target_ratio
    relative = latency / target
    if config.kind == "absolute":
        return accuracy + config.beta * abs(relative - 1.0)
    exponent = config.alpha if latency <= target else config.beta
    return accuracy * relative**exponent
