"""A tiny search space and a counting fake backend for the lookup-table tests."""

from __future__ import annotations

import os

from mnas.latency.backend import LatencyBackend
from mnas.latency.result import BackendFingerprint, LatencyResult
from mnas.search_space.space import (
    DEFAULT_CONV_OPS,
    FactorizedSearchSpace,
    SkeletonBlock,
)


def tiny_space(**overrides) -> FactorizedSearchSpace:
    """Two blocks at 32x32: 23 distinct table entries (see test_lut_builder)."""
    values = dict(
        name="tiny",
        version=1,
        skeleton=(SkeletonBlock(1, 16, 1, 1), SkeletonBlock(6, 24, 1, 2)),
        conv_ops=DEFAULT_CONV_OPS[:2],
        kernel_sizes=(3,),
        se_ratios=(0.0, 0.25),
        skips=("none", "identity"),
        filter_multipliers=(1.0,),
        layer_offsets=(0, 1),
        stem_filters=16,
        head_filters=32,
        resolution=32,
    )
    values.update(overrides)
    return FactorizedSearchSpace(**values)


class FixedBackend(LatencyBackend):
    """Answers ``ms`` for every file (or ``ms_by_name[basename]``); counts calls."""

    name = "fake"

    def __init__(
        self,
        ms: float = 2.0,
        device: str = "FAKE1",
        ms_by_name: dict[str, float] | None = None,
    ) -> None:
        self.ms = ms
        self.device = device
        self.ms_by_name = ms_by_name or {}
        self.calls: list[str] = []

    def fingerprint(self) -> BackendFingerprint:
        return BackendFingerprint.create("fake", "Phone", self.device, 1, "v1")

    def measure(self, tflite_path: str) -> LatencyResult:
        self.calls.append(os.path.basename(tflite_path))
        ms = self.ms_by_name.get(os.path.basename(tflite_path), self.ms)
        return LatencyResult.from_samples([ms, ms], self.fingerprint())


def builder_layer_tflite(spec, layer) -> bytes:
    """One searchable layer (a ``LayerPlan`` of ``spec``) as the Keras builder
    makes it, exported the way whole models are: what a table entry of the
    layer's key must convert like."""
    import keras

    from mnas.latency.export import export_tflite
    from mnas.model.builder import build_layer

    inputs = keras.Input((*layer.input_size, layer.input_filters))
    return export_tflite(keras.Model(inputs, build_layer(spec, inputs, layer)))


class NoisyPhaseBackend(FixedBackend):
    """``FixedBackend`` whose files named in ``noisy`` are timed in a noisy
    phase first: their first ``noisy[name]`` rounds alternate between half
    and one and a half times their latency (an interval no target meets),
    later rounds are steady. Deterministic: no clock, no randomness."""

    def __init__(self, noisy: dict[str, int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.noisy = dict(noisy)
        self.seen: dict[str, int] = {}

    def measure(self, tflite_path: str) -> LatencyResult:
        name = os.path.basename(tflite_path)
        count = self.seen.get(name, 0)
        self.seen[name] = count + 1
        self.calls.append(name)
        ms = self.ms_by_name.get(name, self.ms)
        if count < self.noisy.get(name, 0):
            ms *= 0.5 if count % 2 == 0 else 1.5
        return LatencyResult.from_samples([ms, ms], self.fingerprint())
