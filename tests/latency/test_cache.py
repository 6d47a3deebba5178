"""Latency cache: keys, persistence, bypass, and concurrent writers."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3

import pytest

from mnas.latency.backend import LatencyBackend
from mnas.latency.cache import CachedBackend, LatencyCache, sha256_bytes, sha256_file
from mnas.latency.errors import LatencyError
from mnas.latency.measure.conditions import Conditions
from mnas.latency.measure.uncertainty import Uncertainty
from mnas.latency.result import BackendFingerprint, LatencyResult

FP_A = BackendFingerprint.create("host", "x86_64", "AMD EPYC", 1, "litert 2.3.0")
FP_B = BackendFingerprint.create("host", "x86_64", "AMD EPYC", 2, "litert 2.3.0")


def result(median: float, fingerprint: BackendFingerprint = FP_A) -> LatencyResult:
    return LatencyResult.from_samples(
        [median - 0.1, median, median + 0.1], fingerprint, init_ms=3.0
    )


class CountingBackend(LatencyBackend):
    name = "counting"

    def __init__(self, fingerprint=FP_A, fail: bool = False) -> None:
        self.calls: list[str] = []
        self._fingerprint = fingerprint
        self.fail = fail

    def fingerprint(self) -> BackendFingerprint:
        return self._fingerprint

    def measure(self, tflite_path: str) -> LatencyResult:
        self.calls.append(tflite_path)
        if self.fail:
            raise LatencyError("boom", ["measure", tflite_path])
        return result(float(len(self.calls)), self._fingerprint)


def test_round_trip_and_keys(tmp_path):
    cache = LatencyCache(tmp_path / "cache.sqlite")
    assert cache.journal_mode() == "wal"
    digest = sha256_bytes(b"model one")
    assert cache.get(digest, FP_A) is None
    stored = result(7.0)
    cache.put(digest, stored)
    assert cache.get(digest, FP_A) == stored
    assert cache.get(digest, FP_A.key()) == stored
    # Different threads (or device, runtime...) or different bytes: a miss.
    assert cache.get(digest, FP_B) is None
    assert cache.get(sha256_bytes(b"model two"), FP_A) is None
    cache.put(digest, result(9.0))
    assert cache.get(digest, FP_A).median_ms == 9.0
    assert len(cache) == 1
    assert cache.delete(digest, FP_A) and len(cache) == 0


def test_persists_across_instances_and_stores_json(tmp_path):
    path = tmp_path / "nested" / "cache.sqlite"
    LatencyCache(path).put("abc", result(5.0))
    assert LatencyCache(path).get("abc", FP_A).median_ms == 5.0
    with sqlite3.connect(path) as conn:
        text = conn.execute("SELECT result_json FROM latency").fetchone()[0]
    assert '"median_ms": 5.0' in text


def test_file_and_bytes_digests_agree(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"\x00" * 3_000_000)
    assert sha256_file(path) == sha256_bytes(path.read_bytes())


def test_cached_backend_hits_misses_and_bypass(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"bytes of m")
    same_bytes = tmp_path / "copy of m.tflite"
    same_bytes.write_bytes(b"bytes of m")
    cache = LatencyCache(tmp_path / "c.sqlite")
    inner = CountingBackend()
    cached = CachedBackend(inner, cache)
    assert cached.fingerprint() == FP_A and cached.name == "counting"
    first = cached.measure(str(model))
    assert cached.measure(str(model)) == first
    assert cached.measure(str(same_bytes)) == first  # keyed by content
    assert (cached.hits, cached.misses, len(inner.calls)) == (2, 1, 1)

    fresh = CachedBackend(inner, cache, bypass=True).measure(str(model))
    assert len(inner.calls) == 2 and fresh.median_ms == 2.0
    # The fresh result replaced the old entry.
    assert cached.measure(str(model)).median_ms == 2.0

    other_threads = CachedBackend(CountingBackend(FP_B), cache)
    assert other_threads.measure(str(model)).fingerprint == FP_B
    assert len(cache) == 2


def test_failures_are_not_cached(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    cache = LatencyCache(tmp_path / "c.sqlite")
    failing = CachedBackend(CountingBackend(fail=True), cache)
    with pytest.raises(LatencyError):
        failing.measure(str(model))
    assert len(cache) == 0


def _writer(path: str, worker: int, count: int) -> int:
    cache = LatencyCache(path, timeout_s=60)
    for i in range(count):
        # Distinct keys plus one key everybody fights over.
        cache.put(f"model-{worker}-{i}", result(1.0 + worker + i / 1000))
        cache.put("shared", result(100.0 + worker))
        assert cache.get(f"model-{worker}-{i}", FP_A) is not None
    return worker


def test_concurrent_writer_processes(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    workers, count = 4, 40
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        done = pool.starmap(_writer, [(path, w, count) for w in range(workers)])
    assert sorted(done) == list(range(workers))
    cache = LatencyCache(path)
    assert len(cache) == workers * count + 1
    for w in range(workers):
        for i in range(count):
            got = cache.get(f"model-{w}-{i}", FP_A)
            assert got.median_ms == pytest.approx(1.0 + w + i / 1000)
    assert cache.get("shared", FP_A).median_ms in {100.0 + w for w in range(workers)}


def with_verdict(base: LatencyResult, stable: bool) -> LatencyResult:
    """``base`` as an adaptive measurement would return it."""
    reasons = () if stable else ("interval ±5.0% wider than the target ±2.0%",)
    uncertainty = Uncertainty(
        estimate_ms=base.median_ms,
        low_ms=base.median_ms * 0.95,
        high_ms=base.median_ms * 1.05,
        confidence=0.95,
        rounds=2,
        round_ms=(base.median_ms * 0.98, base.median_ms * 1.02),
        spread=0.04,
        target=0.02,
        stable=stable,
        reasons=reasons,
        conditions=Conditions(load_avg=1.0, interference=("CPU 1 busy",)),
    )
    return dataclasses.replace(base, uncertainty=uncertainty)


class VerdictBackend(CountingBackend):
    """Unstable on the first measurement, stable afterwards."""

    def measure(self, tflite_path: str) -> LatencyResult:
        base = super().measure(tflite_path)
        return with_verdict(base, stable=len(self.calls) > 1)


def test_cache_stores_the_interval_and_conditions(tmp_path):
    cache = LatencyCache(tmp_path / "c.sqlite")
    rich = with_verdict(result(7.0), stable=False)
    cache.put("abc", rich)
    got = cache.get("abc", FP_A)
    assert got == rich and got.stable is False
    assert got.uncertainty.conditions.interference == ("CPU 1 busy",)


def test_unstable_hit_is_remeasured_and_replaced(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"m")
    cache = LatencyCache(tmp_path / "c.sqlite")
    inner = VerdictBackend()
    cached = CachedBackend(inner, cache)
    first = cached.measure(str(model))
    assert first.stable is False
    assert cache.get(sha256_file(model), FP_A).stable is False  # stored flagged
    second = cached.measure(str(model))
    assert second.stable is True and len(inner.calls) == 2
    assert (cached.hits, cached.misses, cached.remeasured) == (0, 2, 1)
    # Now stable in the cache: a plain hit.
    assert cached.measure(str(model)) == second and len(inner.calls) == 2
    assert cached.hits == 1


def test_unstable_hit_can_be_accepted(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"m")
    cache = LatencyCache(tmp_path / "c.sqlite")
    inner = VerdictBackend()
    CachedBackend(inner, cache).measure(str(model))
    accepting = CachedBackend(inner, cache, accept_unstable=True)
    assert accepting.measure(str(model)).stable is False
    assert len(inner.calls) == 1 and accepting.hits == 1


def test_results_without_an_interval_are_hits_unless_one_is_required(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"m")
    cache = LatencyCache(tmp_path / "c.sqlite")
    cache.put(sha256_file(model), result(3.0))  # an old, plain entry
    inner = VerdictBackend()
    assert CachedBackend(inner, cache).measure(str(model)).median_ms == 3.0
    assert inner.calls == []
    strict = CachedBackend(inner, cache, require_interval=True)
    assert strict.measure(str(model)).uncertainty is not None
    assert len(inner.calls) == 1 and strict.remeasured == 1


def test_a_result_without_the_ratio_to_the_reference_is_measured_again(tmp_path):
    from mnas.latency.measure.uncertainty import RatioEstimate

    model = tmp_path / "m.tflite"
    model.write_bytes(b"m")
    cache = LatencyCache(tmp_path / "c.sqlite")
    digest = sha256_file(model)
    cache.put(digest, with_verdict(result(3.0), stable=True))  # no ratio
    inner = CountingBackend()
    ratio = RatioEstimate("MobileNetV2 1.0 @224", 6.0, 0.5, 0.45, 0.55, 5)
    inner_result = with_verdict(result(3.0), stable=True)
    inner.measure = lambda path: dataclasses.replace(
        inner_result,
        uncertainty=dataclasses.replace(inner_result.uncertainty, ratio=ratio),
    )
    wanting = CachedBackend(inner, cache, require_reference="MobileNetV2 1.0 @224")
    assert wanting.measure(str(model)).uncertainty.ratio == ratio
    assert wanting.remeasured == 1
    assert wanting.measure(str(model)).uncertainty.ratio == ratio
    assert wanting.hits == 1  # now it has that ratio
    other = CachedBackend(inner, cache, require_reference="mnasnet-a1 @224")
    other.measure(str(model))
    assert other.remeasured == 1  # a ratio to another reference does not count
