"""Adaptive measurement: the stopping rule and flagging (fake clock and
rounds), relative latency, interference, and one real small-model run."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from mnas.latency.measure.adaptive import (
    AdaptiveBackend,
    AdaptiveMeasurement,
    AdaptiveSettings,
    measure_adaptive,
    monitor_for,
    timed_cpus_of,
)
from mnas.latency.measure.interference import InterferenceMonitor
from mnas.latency.measure.reference import ReferenceModel
from mnas.latency.measure.rounds import Round
from mnas.latency.measure.uncertainty import format_ms
from mnas.latency.result import BackendFingerprint, LatencyResult

FP = BackendFingerprint.create("fake", "x86_64", "test cpu", 1, "fake 1")


class FakeSampler:
    """Rounds of synthetic models; every round advances the fake clock.

    ``models`` maps a path to (true ms, between-round sd, within-run sd);
    ``shared`` is a per-round factor common to all models (drift that a
    ratio cancels).
    """

    def __init__(
        self, clock, models, seconds_per_round=1.0, runs=20, seed=0, shared=0.0
    ):
        self.clock = clock
        self.models = models
        self.seconds = seconds_per_round
        self.runs = runs
        self.rng = np.random.default_rng(seed)
        self.shared = shared
        self.calls: list[str] = []
        self._factor = 1.0

    def __call__(self, path: str) -> Round:
        self.calls.append(path)
        truth, between, within = self.models[path]
        self.clock.now += self.seconds
        factor = (1 + between * self.rng.standard_normal()) * self._factor
        samples = truth * factor * (1 + within * self.rng.standard_normal(self.runs))
        return Round(
            LatencyResult.from_samples(samples, FP, init_ms=1.0), tuple(samples)
        )

    def new_round_factor(self) -> None:
        self._factor = 1 + self.shared * self.rng.standard_normal()


def run(clock, models, settings=None, reference=None, monitor=None, **sampler_kwargs):
    sampler = FakeSampler(clock, models, **sampler_kwargs)
    measurement = AdaptiveMeasurement(
        sampler, FP, settings or AdaptiveSettings(), reference, monitor, clock
    )
    return measurement.run(list(models)), sampler, clock


QUIET = {"a.tflite": (10.0, 0.001, 0.01)}
NOISY = {"a.tflite": (10.0, 0.15, 0.02)}


def test_converging_rounds_stop_at_min_rounds_stable(clock):
    outcome, sampler, _ = run(clock, QUIET, AdaptiveSettings(min_rounds=5))
    assert (outcome.rounds, outcome.stop) == (5, "target")
    result = outcome.results[0]
    u = result.uncertainty
    assert result.stable is True and u.reasons == ()
    assert u.rounds == 5 and len(sampler.calls) == 5
    assert u.low_ms <= result.median_ms <= u.high_ms
    assert result.median_ms == u.estimate_ms == pytest.approx(np.mean(u.round_ms))
    assert u.half_width <= 0.02
    assert result.runs == 5 * 20  # pooled runs of every round


def test_stops_at_the_first_round_that_meets_the_target(clock):
    models = {"a.tflite": (10.0, 0.03, 0.01)}
    settings = AdaptiveSettings(min_rounds=3, max_rounds=200, max_seconds=1e6)
    outcome, _, _ = run(clock, models, settings)
    k = outcome.rounds
    assert outcome.stop == "target" and k > 3
    assert outcome.results[0].uncertainty.half_width <= 0.02
    # The same rounds cut one short: not yet within the target, flagged.
    shorter = AdaptiveSettings(min_rounds=3, max_rounds=k - 1, max_seconds=1e6)
    cut, _, _ = run(clock, models, shorter)
    assert cut.stop == "max_rounds"
    u = cut.results[0].uncertainty
    assert u.half_width > 0.02 and not u.stable
    assert u.reasons == (
        f"interval ±{u.half_width:.1%} wider than the target ±2.0% after {k - 1} "
        f"rounds (max_rounds {k - 1} reached)",
    )


def test_noisy_rounds_hit_the_time_cap_and_are_flagged_unstable(clock):
    settings = AdaptiveSettings(max_seconds=30.0, max_rounds=1000)
    outcome, sampler, clock = run(clock, NOISY, settings, seconds_per_round=2.0)
    assert outcome.stop == "max_seconds"
    assert outcome.seconds <= 30.0 and clock.now - 100.0 <= 30.0
    result = outcome.results[0]
    u = result.uncertainty
    assert result.stable is False
    assert u.rounds == outcome.rounds == 15
    assert u.reasons == (
        f"interval ±{u.half_width:.1%} wider than the target ±2.0% after 15 rounds "
        "(time cap 30 s reached)",
    )
    assert u.low_ms <= result.median_ms <= u.high_ms
    assert result.summary().endswith(" UNSTABLE: " + u.reasons[0])


def test_a_round_that_would_pass_the_cap_is_not_started(clock):
    settings = AdaptiveSettings(max_seconds=5.0)
    outcome, _, clock = run(clock, NOISY, settings, seconds_per_round=2.0)
    # Rounds end at 2 and 4 s; a third would end at 6 s > 5 s.
    assert outcome.rounds == 2 and clock.now - 100.0 == 4.0
    assert outcome.results[0].uncertainty.reasons[0] == (
        "only 2 rounds of min_rounds 5 (time cap 5 s reached)"
    )


def test_one_round_runs_even_past_the_cap_and_says_there_is_no_interval(clock):
    settings = AdaptiveSettings(max_seconds=0.5)
    outcome, _, _ = run(clock, NOISY, settings, seconds_per_round=2.0)
    u = outcome.results[0].uncertainty
    assert outcome.rounds == 1
    assert u.reasons == ("only 1 round (time cap 0.5 s reached): no interval",)
    assert u.low_ms == u.estimate_ms == u.high_ms
    assert "only 1 round" in outcome.results[0].summary()


def test_models_are_interleaved_and_a_converged_one_drops_out(clock):
    models = {"quiet.tflite": (5.0, 0.0005, 0.01), "noisy.tflite": (8.0, 0.2, 0.01)}
    settings = AdaptiveSettings(min_rounds=3, max_rounds=8, max_seconds=1e6)
    outcome, sampler, _ = run(clock, models, settings)
    quiet, noisy = outcome.results
    assert quiet.uncertainty.rounds == 3 and quiet.stable
    assert noisy.uncertainty.rounds == 8 and not noisy.stable
    # Rounds 0-2 time both, the order rotating; then only the noisy one.
    assert sampler.calls[:6] == [
        "quiet.tflite",
        "noisy.tflite",
        "noisy.tflite",
        "quiet.tflite",
        "quiet.tflite",
        "noisy.tflite",
    ]
    assert sampler.calls[6:] == ["noisy.tflite"] * 5


def test_results_are_deterministic_for_a_seed(clock):
    first, _, _ = run(clock, NOISY, AdaptiveSettings(max_rounds=8, seed=3))
    second, _, _ = run(clock, NOISY, AdaptiveSettings(max_rounds=8, seed=3))
    assert first.results[0].to_dict() == second.results[0].to_dict()
    other, _, _ = run(clock, NOISY, AdaptiveSettings(max_rounds=8, seed=4))
    assert other.results[0].uncertainty != first.results[0].uncertainty


def test_adaptive_result_survives_json_and_keeps_its_flag(clock):
    outcome, _, _ = run(clock, NOISY, AdaptiveSettings(max_rounds=6))
    result = outcome.results[0]
    back = LatencyResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back == result and back.stable is False


class RoundFactorSampler(FakeSampler):
    """Both models share each round's drift: candidate = 1.5 x reference."""

    def __call__(self, path: str) -> Round:
        if len(self.calls) % 2 == 0:  # two models per round
            self.new_round_factor()
        return super().__call__(path)


def test_ratio_to_a_reference_pairs_rounds_and_cancels_shared_drift(clock):
    models = {"ref.tflite": (6.0, 0.0, 0.01), "a.tflite": (9.0, 0.0, 0.01)}
    sampler = RoundFactorSampler(clock, models, shared=0.15)
    reference = ReferenceModel.from_file("MobileNetV2 1.0 @224", "ref.tflite")
    reference._path = "ref.tflite"  # no file needed for a fake sampler
    settings = AdaptiveSettings(min_rounds=6, max_rounds=6)
    outcome = AdaptiveMeasurement(sampler, FP, settings, reference, None, clock).run(
        ["a.tflite"]
    )
    result = outcome.results[0]
    ratio = result.uncertainty.ratio
    assert ratio.reference == "MobileNetV2 1.0 @224" and ratio.rounds == 6
    assert ratio.low <= 1.5 <= ratio.high
    # The shared drift widens the absolute interval, not the ratio's.
    assert ratio.half_width < result.uncertainty.half_width / 3
    assert ratio.reference_ms == pytest.approx(outcome.reference.median_ms)
    # The reference ran in every round, first in even rounds.
    assert sampler.calls[::2] == ["ref.tflite", "a.tflite"] * 3
    assert "x MobileNetV2 1.0 @224 (95% CI" in result.summary()


def test_ratio_target_keeps_a_model_measuring(clock):
    models = {"ref.tflite": (6.0, 0.001, 0.01), "a.tflite": (9.0, 0.001, 0.01)}
    sampler = FakeSampler(clock, models)
    reference = ReferenceModel.from_file("ref", "ref.tflite")
    reference._path = "ref.tflite"
    tight = AdaptiveSettings(min_rounds=3, max_rounds=4, ratio_target=1e-6)
    outcome = AdaptiveMeasurement(sampler, FP, tight, reference, None, clock).run(
        ["a.tflite"]
    )
    assert outcome.stop == "max_rounds"
    reasons = outcome.results[0].uncertainty.reasons
    assert len(reasons) == 1 and reasons[0].startswith("ratio interval ±")


class ScriptedReader:
    """A /proc tree whose CPU 1 is kept busy by someone else."""

    where = "host"

    def __init__(self, busy_share: float, status: int | None = None) -> None:
        self.ticks = 0
        self.share = busy_share
        self.status = status

    def read(self, patterns):
        self.ticks += 100
        busy1 = int(self.ticks * self.share)
        text = (
            f"cpu  {busy1} 0 0 {2 * self.ticks - busy1} 0 0 0 0 0 0\n"
            f"cpu0 0 0 0 {self.ticks} 0 0 0 0 0 0\n"
            f"cpu1 {busy1} 0 0 {self.ticks - busy1} 0 0 0 0 0 0\n"
        )
        return {"/proc/stat": text, "/proc/loadavg": "1.2 1 1 1/1 1\n"}

    def thermal_status(self):
        return self.status


def fake_monitor(clock, busy_share, status=None):
    return InterferenceMonitor(
        ScriptedReader(busy_share, status),
        own=lambda: 0.0,
        timed_cpus=[0],
        clock=clock,
        sleep=clock.sleep,
        siblings=[0],
        thermal_status=status is not None,
    )


@pytest.mark.parametrize("flag", [True, False])
def test_interference_makes_a_converged_result_unstable_unless_disabled(flag, clock):
    sampler = FakeSampler(clock, QUIET)
    settings = AdaptiveSettings(flag_interference=flag)
    monitor = fake_monitor(clock, busy_share=0.9)
    result = (
        AdaptiveMeasurement(sampler, FP, settings, None, monitor, clock)
        .run(["a.tflite"])
        .results[0]
    )
    conditions = result.uncertainty.conditions
    busy = (
        "CPU 1 (not timed; may share a core or memory bandwidth) busy with another "
        "process in 5 of 5 rounds (up to 90%)"
    )
    assert busy in conditions.interference
    assert conditions.interference[0].startswith("before timing: CPU 1")
    assert conditions.load_avg == 1.2 and conditions.timed_cpus == (0,)
    assert result.uncertainty.half_width <= 0.02
    assert result.stable is (not flag)
    if flag:
        assert busy in result.uncertainty.reasons


def test_quiet_machine_keeps_a_converged_result_stable(clock):
    sampler = FakeSampler(clock, QUIET)
    monitor = fake_monitor(clock, busy_share=0.05)
    result = (
        AdaptiveMeasurement(sampler, FP, None, None, monitor, clock)
        .run(["a.tflite"])
        .results[0]
    )
    assert result.stable and result.uncertainty.conditions.interference == ()
    assert re.fullmatch(
        r"10\.\d\d ms ±0\.\d% \(95% CI \d+\.\d\d-\d+\.\d\d, 5 rounds, spread \d+%, "
        r"load 1\.2, steal 0\.0%, freq unavailable\) stable",
        result.summary(),
    )


def test_a_hot_phone_is_flagged(clock):
    sampler = FakeSampler(clock, QUIET)
    monitor = fake_monitor(clock, busy_share=0.0, status=3)
    result = (
        AdaptiveMeasurement(sampler, FP, None, None, monitor, clock)
        .run(["a.tflite"])
        .results[0]
    )
    assert result.uncertainty.reasons == (
        "thermal status 3 (severe): the phone throttles",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 0.0}, r"target must be in \(0, 1\), got 0.0"),
        ({"confidence": 1.0}, r"confidence must be in \[0.5, 1\), got 1.0"),
        ({"min_rounds": 1}, "min_rounds must be >= 2, got 1"),
        ({"max_rounds": 3}, r"max_rounds must be >= min_rounds \(5\), got 3"),
        ({"max_seconds": 0}, "max_seconds must be > 0, got 0"),
        ({"ratio_target": 2.0}, r"ratio_target must be in \(0, 1\), got 2.0"),
        ({"resamples": 10}, "resamples must be >= 100, got 10"),
        ({"precheck_seconds": -1}, "precheck_seconds must be >= 0, got -1"),
    ],
)
def test_settings_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        AdaptiveSettings(**kwargs)


def test_needs_a_model(clock):
    with pytest.raises(ValueError, match="needs at least one model"):
        AdaptiveMeasurement(lambda p: None, FP).run([])


def test_timed_cpus_and_monitor_follow_the_backend():
    from mnas.latency.backends.benchmark_model import AdbBenchmarkModelBackend
    from mnas.latency.backends.host import HostBackend
    from mnas.latency.backends.litert_benchmark import LiteRTBenchmarkBackend
    from mnas.latency.measure.conditions import AdbReader, LocalReader

    assert timed_cpus_of(HostBackend(cpus=[1, 0])) == (0, 1)
    assert timed_cpus_of(HostBackend()) is None
    assert timed_cpus_of(LiteRTBenchmarkBackend(cpus=[1])) == (1,)
    phone = AdbBenchmarkModelBackend("bm", serial="SER1", taskset_mask="f0")
    assert timed_cpus_of(phone) == (4, 5, 6, 7)
    on_phone = monitor_for(phone)
    assert isinstance(on_phone.reader, AdbReader) and on_phone.own is None
    assert on_phone.thermal_status
    on_host = monitor_for(HostBackend(cpus=[0]))
    assert isinstance(on_host.reader, LocalReader) and on_host.timed_cpus == (0,)


# --------------------------------------------------------------------------
# The one real measurement
# --------------------------------------------------------------------------


def test_real_adaptive_measurement_of_a_tiny_model_with_a_reference(tmp_path):
    from mnas.latency.backends.host import HostBackend
    from mnas.latency.export import export_tflite
    from mnas.testing.latency_models import tiny_convnet

    path = tmp_path / "tiny.tflite"
    path.write_bytes(export_tflite(tiny_convnet(input_size=32, width=16)))
    exports = []

    def export_reference() -> bytes:
        exports.append(1)
        return export_tflite(tiny_convnet(input_size=32, width=8, seed=1))

    reference = ReferenceModel("tiny reference", export_reference, tmp_path)
    backend = HostBackend(warmup_runs=2, warmup_min_secs=0.0, num_runs=10, min_secs=0.0)
    settings = AdaptiveSettings(
        min_rounds=2, max_rounds=3, max_seconds=30.0, target=0.5, precheck_seconds=0.1
    )
    outcome = measure_adaptive(backend, [str(path)], settings, reference)
    result = outcome.results[0]
    u = result.uncertainty
    assert 2 <= u.rounds <= 3 and outcome.rounds == u.rounds
    assert len(u.round_ms) == u.rounds and result.runs == 10 * u.rounds
    assert u.low_ms <= result.median_ms <= u.high_ms
    assert result.min_ms <= result.median_ms <= result.max_ms
    assert u.conditions.where == "host" and u.conditions.load_avg is not None
    assert u.ratio.reference == "tiny reference" and u.ratio.rounds == u.rounds
    assert u.ratio.low <= u.ratio.ratio <= u.ratio.high
    assert exports == [1]  # exported once, on first use
    assert result.stable == (not u.reasons)
    assert result.summary().startswith(f"{format_ms(result.median_ms)} ms ±")
    assert result.fingerprint == backend.fingerprint()
    # The wrapper gives the same kind of result for one file.
    wrapped = AdaptiveBackend(backend, settings, watch_interference=False)
    single = wrapped.measure(str(path))
    assert single.uncertainty.conditions is None and single.uncertainty.rounds >= 2
