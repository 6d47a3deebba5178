"""What a latency measurement returns, and what it was measured on.

Results are plain frozen values with a JSON-safe dict form so they can be
cached (no pickle), logged, and compared across processes.  The
fingerprint names everything that changes the number for the same
``.tflite`` bytes, so a cache keyed on it never mixes devices or settings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mnas.latency.measure.uncertainty import Uncertainty, format_ms


@dataclass(frozen=True)
class BackendFingerprint:
    """Identifies the runtime a latency was measured with.

    Attributes:
      backend: backend name, e.g. ``host`` or ``benchmark_model``.
      device_model: phone model (``getprop ro.product.model``) or host
        machine architecture.
      device_id: adb serial for a phone, host CPU model for the host.
      num_threads: threads the runtime used.
      runtime_version: runtime package version or binary digest.
      options: other settings that change timings (affinity mask,
        delegate flags), as sorted ``(name, value)`` string pairs.
    """

    backend: str
    device_model: str
    device_id: str
    num_threads: int
    runtime_version: str
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Canonical order so that equal settings give equal keys.
        normalized = tuple(sorted((str(k), str(v)) for k, v in self.options))
        object.__setattr__(self, "options", normalized)

    @classmethod
    def create(
        cls,
        backend: str,
        device_model: str,
        device_id: str,
        num_threads: int,
        runtime_version: str,
        options: Mapping[str, Any] | None = None,
    ) -> BackendFingerprint:
        """Builds a fingerprint, dropping options whose value is None."""
        pairs = tuple(
            (k, _option_text(v)) for k, v in (options or {}).items() if v is not None
        )
        return cls(
            backend, device_model, device_id, int(num_threads), runtime_version, pairs
        )

    def key(self) -> str:
        """Stable string key: canonical JSON of every field."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "device_model": self.device_model,
            "device_id": self.device_id,
            "num_threads": self.num_threads,
            "runtime_version": self.runtime_version,
            "options": [list(pair) for pair in self.options],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackendFingerprint:
        return cls(
            backend=str(data["backend"]),
            device_model=str(data["device_model"]),
            device_id=str(data["device_id"]),
            num_threads=int(data["num_threads"]),
            runtime_version=str(data["runtime_version"]),
            options=tuple((str(k), str(v)) for k, v in data.get("options", ())),
        )


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(v) for v in sorted(value))
    return str(value)


@dataclass(frozen=True)
class LatencyResult:
    """Summary of one model's timed runs, in milliseconds.

    ``p5_ms``/``p95_ms`` are None when the backend reports only aggregates
    (benchmark_model prints mean/std/min/max, no percentiles); then
    ``median_ms`` holds the mean and ``median_is_mean`` says so, so callers
    can tell a true median from a stand-in.

    ``uncertainty`` is set by an adaptive measurement (several rounds, each
    a fresh interpreter or process): then ``median_ms`` is its estimate
    (the mean over rounds of each round's median) so every reader of
    ``median_ms`` gets it, the other statistics pool all timed runs, and
    ``stable`` says whether the figure may be used.  A single run of a
    backend has no uncertainty (``stable`` is None: unknown).
    """

    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p5_ms: float | None
    p95_ms: float | None
    runs: int
    init_ms: float | None
    first_run_ms: float | None
    fingerprint: BackendFingerprint
    median_is_mean: bool = False
    extra: tuple[tuple[str, float], ...] = field(default=())
    uncertainty: Uncertainty | None = None

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise ValueError(
                f"a latency result needs at least one run, got {self.runs}"
            )
        for name in ("median_ms", "mean_ms", "std_ms", "min_ms", "max_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if self.min_ms > self.max_ms:
            raise ValueError(f"min_ms {self.min_ms} > max_ms {self.max_ms}")

    @property
    def stable(self) -> bool | None:
        """True/False from an adaptive measurement; None without one."""
        return None if self.uncertainty is None else self.uncertainty.stable

    def summary(self) -> str:
        """One line for binaries and logs, with the interval where known.

        ``9.53 ms ±2.1% (95% CI 9.33-9.73, 6 rounds, spread 4%, load 0.9,
        steal 0.0%, freq unavailable) stable``; without an interval it says
        so instead of printing a bare number.
        """
        if self.uncertainty is not None:
            return self.uncertainty.describe()
        what = "mean" if self.median_is_mean else "median"
        return (
            f"{format_ms(self.median_ms)} ms ({what} of {self.runs} runs in one "
            "round: no interval, stability unknown)"
        )

    @property
    def cv(self) -> float:
        """Coefficient of variation of the timed runs (std / mean)."""
        return self.std_ms / self.mean_ms if self.mean_ms > 0 else 0.0

    @classmethod
    def from_samples(
        cls,
        samples_ms: Sequence[float],
        fingerprint: BackendFingerprint,
        init_ms: float | None = None,
        first_run_ms: float | None = None,
    ) -> LatencyResult:
        """Summarizes per-run times.

        Percentiles interpolate linearly and std is the sample std
        (n - 1), the same conventions as ``litert-benchmark``, so host and
        CLI figures are comparable.
        """
        data = np.asarray(list(samples_ms), dtype=np.float64)
        if data.size == 0:
            raise ValueError("from_samples needs at least one sample")
        if not np.all(np.isfinite(data)):
            raise ValueError("samples must be finite")
        std = float(data.std(ddof=1)) if data.size > 1 else 0.0
        p5, p50, p95 = (float(v) for v in np.percentile(data, [5, 50, 95]))
        return cls(
            median_ms=p50,
            mean_ms=float(data.mean()),
            std_ms=std,
            min_ms=float(data.min()),
            max_ms=float(data.max()),
            p5_ms=p5,
            p95_ms=p95,
            runs=int(data.size),
            init_ms=init_ms,
            first_run_ms=first_run_ms,
            fingerprint=fingerprint,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (round-trips through :meth:`from_dict`)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "fingerprint":
                value = value.to_dict()
            elif f.name == "extra":
                value = [[k, v] for k, v in value]
            elif f.name == "uncertainty":
                if value is None:
                    continue  # keeps the dict of a plain result as before
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyResult:
        def opt(name: str) -> float | None:
            value = data.get(name)
            return None if value is None else float(value)

        return cls(
            median_ms=float(data["median_ms"]),
            mean_ms=float(data["mean_ms"]),
            std_ms=float(data["std_ms"]),
            min_ms=float(data["min_ms"]),
            max_ms=float(data["max_ms"]),
            p5_ms=opt("p5_ms"),
            p95_ms=opt("p95_ms"),
            runs=int(data["runs"]),
            init_ms=opt("init_ms"),
            first_run_ms=opt("first_run_ms"),
            fingerprint=BackendFingerprint.from_dict(data["fingerprint"]),
            median_is_mean=bool(data.get("median_is_mean", False)),
            extra=tuple((str(k), float(v)) for k, v in data.get("extra", ())),
            uncertainty=(
                None
                if data.get("uncertainty") is None
                else Uncertainty.from_dict(data["uncertainty"])
            ),
        )
