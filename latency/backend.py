"""One interface for every way of timing a ``.tflite`` file.

The search loop only needs "give me a latency for this file, and tell me
what it was measured on"; whether the number came from the in-process
interpreter, a CLI or a phone is a constructor choice made once.
"""

from __future__ import annotations

import abc
import importlib
from typing import Any

from mnas.latency.result import BackendFingerprint, LatencyResult


class LatencyBackend(abc.ABC):
    """Measures the latency of ``.tflite`` files on one device/runtime."""

    #: Registry name of the backend (the fingerprint's ``backend`` field).
    name: str = ""

    @abc.abstractmethod
    def fingerprint(self) -> BackendFingerprint:
        """What a result from this backend depends on besides the model."""

    @abc.abstractmethod
    def measure(self, tflite_path: str) -> LatencyResult:
        """Times one model; raises LatencyError if it cannot."""

    def describe(self) -> str:
        """One-line description for logs and tables."""
        fp = self.fingerprint()
        return f"{fp.backend} on {fp.device_model} ({fp.device_id}), {fp.num_threads}t"


# name -> "module:factory"; imported lazily so that choosing the adb
# backend never imports the LiteRT interpreter and vice versa.
_REGISTRY: dict[str, str] = {
    "host": "mnas.latency.backends.host:HostBackend",
    "litert-benchmark": "mnas.latency.backends.litert_benchmark:LiteRTBenchmarkBackend",
    "benchmark_model": "mnas.latency.backends.benchmark_model:make_benchmark_model_backend",
}


def backend_names() -> tuple[str, ...]:
    """Names accepted by :func:`make_backend`."""
    return tuple(_REGISTRY)


def make_backend(name: str, **options: Any) -> LatencyBackend:
    """Builds a backend by registry name, passing ``options`` to it.

    Example: ``make_backend('benchmark_model', binary='bm', serial='R58M')``.
    """
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown latency backend {name!r}; choose one of {backend_names()}"
        ) from None
    module_name, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(**options)
