"""Backend registry."""

from __future__ import annotations

import pytest

from mnas.latency.backend import LatencyBackend, backend_names, make_backend
from mnas.latency.backends.benchmark_model import LocalBenchmarkModelBackend
from mnas.latency.backends.host import HostBackend
from mnas.latency.backends.litert_benchmark import LiteRTBenchmarkBackend


def test_every_registered_name_builds_its_backend(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"#!/bin/sh\n")
    built = {
        "host": make_backend("host"),
        "litert-benchmark": make_backend("litert-benchmark"),
        "benchmark_model": make_backend("benchmark_model", binary=str(binary)),
    }
    assert set(backend_names()) == set(built)
    assert isinstance(built["host"], HostBackend)
    assert isinstance(built["litert-benchmark"], LiteRTBenchmarkBackend)
    assert isinstance(built["benchmark_model"], LocalBenchmarkModelBackend)
    for name, backend in built.items():
        assert isinstance(backend, LatencyBackend)
        assert backend.fingerprint().backend == name
        assert backend.fingerprint().num_threads == 1
    assert "host on" in built["host"].describe()


def test_unknown_name_and_bad_options():
    with pytest.raises(ValueError, match="choose one of"):
        make_backend("tflite")
    with pytest.raises(TypeError):
        make_backend("host", no_such_option=1)
