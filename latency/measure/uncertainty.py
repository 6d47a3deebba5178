"""What a latency result says about its own reliability (JSON-safe values).

Kept apart from the measurement code so that ``mnas.latency.result`` can
carry these values without importing numpy-heavy or OS-reading modules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mnas.latency.measure.conditions import Conditions


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def format_ms(value: float) -> str:
    """Milliseconds to 0.01 ms (0.1 ms from 100 ms, 3 digits below 1 ms).

    Fixed decimals keep an estimate and its interval bounds comparable.
    """
    if value >= 100:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class RatioEstimate:
    """Latency relative to a reference model timed in the same rounds.

    ``ratio`` is the geometric mean of the per-round ratios (candidate
    round center / reference round center, paired by round), and
    ``low``/``high`` its bootstrap interval: a target such as "as fast as
    MobileNetV2 on this device" survives a change of machine speed.
    """

    reference: str
    reference_ms: float
    ratio: float
    low: float
    high: float
    rounds: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0 / self.ratio if self.ratio > 0 else math.inf

    def describe(self, confidence: float) -> str:
        return (
            f"{self.ratio:.3f}x {self.reference} ({confidence:.0%} CI "
            f"{self.low:.3f}-{self.high:.3f}, {self.rounds} paired rounds)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "reference_ms": self.reference_ms,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "rounds": self.rounds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatioEstimate:
        return cls(
            reference=str(data["reference"]),
            reference_ms=float(data["reference_ms"]),
            ratio=float(data["ratio"]),
            low=float(data["low"]),
            high=float(data["high"]),
            rounds=int(data["rounds"]),
        )


@dataclass(frozen=True)
class Uncertainty:
    """The interval of a latency estimate and whether to trust it.

    Attributes:
      estimate_ms: mean over rounds of each round's median (the result's
        ``median_ms`` holds the same value).
      low_ms, high_ms: the ``confidence`` interval of the estimate.
      rounds: rounds (fresh interpreter or process each) behind it.
      round_ms: each round's center, in the order measured.
      spread: (max - min) / mean of the round centers.
      target: relative half-width the measurement aimed for (None: none).
      stable: False when the interval missed the target, there were too
        few rounds, or interference, steal or heat was seen; ``reasons``
        says which.  An unstable result must be re-measured, not used as
        if exact.
      conditions: load, steal, frequency, heat and interference findings.
      ratio: the estimate relative to a reference model, if one was timed.
    """

    estimate_ms: float
    low_ms: float
    high_ms: float
    confidence: float
    rounds: int
    round_ms: tuple[float, ...]
    spread: float
    target: float | None
    stable: bool
    reasons: tuple[str, ...] = ()
    conditions: Conditions | None = None
    ratio: RatioEstimate | None = None

    def __post_init__(self) -> None:
        if not self.low_ms <= self.estimate_ms <= self.high_ms:
            raise ValueError(
                f"interval [{self.low_ms}, {self.high_ms}] must contain the "
                f"estimate {self.estimate_ms}"
            )
        if self.rounds < 1 or len(self.round_ms) != self.rounds:
            raise ValueError(
                f"rounds ({self.rounds}) must be >= 1 and match round_ms "
                f"({len(self.round_ms)} values)"
            )
        if self.stable and self.reasons:
            raise ValueError("a stable result cannot carry reasons to distrust it")
        if not self.stable and not self.reasons:
            raise ValueError("an unstable result must say why (reasons is empty)")

    @property
    def half_width(self) -> float:
        """Relative half-width of the interval."""
        if self.estimate_ms <= 0:
            return math.inf
        return (self.high_ms - self.low_ms) / 2.0 / self.estimate_ms

    def describe(self) -> str:
        """``9.53 ms ±2.1% (95% CI 9.33-9.73, 6 rounds, ...) stable``."""
        inside = [
            f"{self.confidence:.0%} CI {format_ms(self.low_ms)}-{format_ms(self.high_ms)}",
            f"{self.rounds} round{'s' if self.rounds != 1 else ''}",
            f"spread {self.spread:.0%}",
        ]
        if self.conditions is not None:
            inside.append(self.conditions.describe())
        text = (
            f"{format_ms(self.estimate_ms)} ms ±{self.half_width:.1%} "
            f"({', '.join(inside)})"
        )
        if self.ratio is not None:
            text += f"; {self.ratio.describe(self.confidence)}"
        if self.stable:
            return text + " stable"
        return text + " UNSTABLE: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate_ms": self.estimate_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "confidence": self.confidence,
            "rounds": self.rounds,
            "round_ms": list(self.round_ms),
            "spread": self.spread,
            "target": self.target,
            "stable": self.stable,
            "reasons": list(self.reasons),
            "conditions": None
            if self.conditions is None
            else self.conditions.to_dict(),
            "ratio": None if self.ratio is None else self.ratio.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Uncertainty:
        conditions = data.get("conditions")
        ratio = data.get("ratio")
        return cls(
            estimate_ms=float(data["estimate_ms"]),
            low_ms=float(data["low_ms"]),
            high_ms=float(data["high_ms"]),
            confidence=float(data["confidence"]),
            rounds=int(data["rounds"]),
            round_ms=tuple(float(v) for v in data["round_ms"]),
            spread=float(data["spread"]),
            target=_opt_float(data.get("target")),
            stable=bool(data["stable"]),
            reasons=tuple(str(r) for r in data.get("reasons", ())),
            conditions=None if conditions is None else Conditions.from_dict(conditions),
            ratio=None if ratio is None else RatioEstimate.from_dict(ratio),
        )
