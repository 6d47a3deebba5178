"""Latency of finished candidates: measured one by one, on a device pool, or
predicted; a failure fails only its trial."""

import dataclasses

from mnas.latency.pool import PoolOutcome
from mnas.search.scoring import LatencyScorer
from mnas.search.workers.pool import Outcome
from mnas.testing.fakes import FakeLatency


class _Backend:
    def __init__(self, broken=()):
        self.broken = set(broken)
        self.paths = []

    def measure(self, path):
        self.paths.append(path)
        if path in self.broken:
            raise RuntimeError(f"cannot run {path}")
        return FakeLatency(float(len(path)))


class _DevicePool:
    def __init__(self):
        self.batches = []

    def measure_all(self, paths):
        self.batches.append(list(paths))
        return [
            PoolOutcome(i, p, 0, error="device lost")
            if p == "b.tflite"
            else PoolOutcome(i, p, 0, result=FakeLatency(2.0))
            for i, p in enumerate(paths)
        ]


def _outcome(trial_id, path, ok=True, num_classes=1000):
    if not ok:
        return Outcome(trial_id, False, error="trained badly")
    return Outcome(trial_id, True, {"tflite_path": path, "num_classes": num_classes})


def test_measured_times_each_model_and_keeps_a_failure_to_its_trial():
    backend = _Backend(broken={"bad.tflite"})
    scorer = LatencyScorer("measured", backend)
    latencies = scorer.score(
        [
            _outcome(0, "a.tflite"),
            _outcome(1, "bad.tflite"),
            _outcome(2, "x", ok=False),
        ],
        {},
    )
    assert sorted(latencies) == [0, 1]  # a failed evaluation is not timed
    assert latencies[0].result.median_ms == 8.0 and latencies[0].error is None
    assert latencies[1].result is None
    assert latencies[1].error == "cannot run bad.tflite"
    assert backend.paths == ["a.tflite", "bad.tflite"]


def test_a_device_pool_measures_the_batch_in_one_call():
    pool = _DevicePool()
    scorer = LatencyScorer("measured", pool)
    latencies = scorer.score([_outcome(3, "a.tflite"), _outcome(4, "b.tflite")], {})
    assert pool.batches == [["a.tflite", "b.tflite"]]
    assert latencies[3].result.median_ms == 2.0 and latencies[3].error is None
    assert latencies[4].error == "device lost"


def test_predicted_asks_the_table_and_times_nothing():
    import numpy as np

    from mnas.latency.lut.predictor import LatencyPredictor
    from mnas.search_space import MNASNET_SPACE
    from mnas.testing.latency_models import synthetic_table

    backend = _Backend()
    predictor = LatencyPredictor(synthetic_table())
    spec = MNASNET_SPACE.decode(MNASNET_SPACE.sample(np.random.default_rng(1)))
    scorer = LatencyScorer("predicted", backend, predictor, resolution=224)
    latencies = scorer.score(
        [_outcome(5, "a.tflite"), _outcome(6, "b.tflite", num_classes=7)],
        {5: spec, 6: spec},
    )
    assert latencies[5].result.median_ms == predictor.predict(spec)
    assert latencies[6].result is None
    assert latencies[6].error.startswith("lookup table has no entry for ")
    assert backend.paths == []


def _result(backend="benchmark_model", model="Pixel 3", device_id="SER1"):
    from mnas.latency.result import BackendFingerprint, LatencyResult

    fingerprint = BackendFingerprint.create(backend, model, device_id, 1, "v1")
    return LatencyResult.from_samples([7.0, 7.2], fingerprint)


class _Results:
    """A batch backend answering with the given results, in turn."""

    def __init__(self, results):
        self.results = list(results)

    def measure_all(self, paths):
        return [
            PoolOutcome(i, p, 0, result=self.results.pop(0))
            for i, p in enumerate(paths)
        ]


def test_phones_of_one_model_are_one_platform_whatever_their_serials():
    pool = _Results([_result(device_id="SER1"), _result(device_id="SER2")])
    scorer = LatencyScorer("measured", pool)
    latencies = scorer.score([_outcome(0, "a.tflite"), _outcome(1, "b.tflite")], {})
    assert [latencies[i].error for i in (0, 1)] == [None, None]
    assert scorer.fingerprint.device_id == "SER1"


def test_a_latency_from_another_platform_stops_the_search():
    import pytest

    from mnas.search.scoring import MixedPlatformError

    pool = _Results([_result(), _result(model="Pixel 7", device_id="SER9")])
    scorer = LatencyScorer("measured", pool)
    scorer.score([_outcome(0, "a.tflite")], {})
    with pytest.raises(MixedPlatformError) as info:
        scorer.score([_outcome(1, "b.tflite")], {})
    assert str(info.value) == (
        "a latency was measured on [benchmark_model, Pixel 7, SER9, 1 thread(s), "
        "v1] but this search measures on [benchmark_model, Pixel 3, SER1, 1 "
        "thread(s), v1]; a search never mixes latency platforms: give every "
        "latency device the same model, runtime and settings"
    )


def test_hosts_with_other_cpus_are_other_platforms():
    import pytest

    from mnas.search.scoring import MixedPlatformError

    class _Host:
        def __init__(self):
            self.cpus = ["AMD EPYC 7B13", "Intel Xeon"]

        def measure(self, path):
            return _result("host", "x86_64", self.cpus.pop(0))

    scorer = LatencyScorer("measured", _Host())
    assert scorer.measure("a.tflite").error is None
    with pytest.raises(MixedPlatformError):
        scorer.measure("b.tflite")


# -- unstable latencies are measured again ------------------------------------------


def _adaptive(ms, half_width, stable, busy=(), steal=None, ratio=None):
    """A host result with an interval of ``±half_width`` and its verdict."""
    from mnas.latency.measure.conditions import Conditions
    from mnas.latency.measure.uncertainty import RatioEstimate, Uncertainty

    interference = tuple(f"CPU {cpu} busy" for cpu, _ in busy)
    if steal is not None and steal > 0.05:
        interference += (f"hypervisor steal {steal:.1%} of CPU time",)
    uncertainty = Uncertainty(
        estimate_ms=ms,
        low_ms=ms * (1 - half_width),
        high_ms=ms * (1 + half_width),
        confidence=0.95,
        rounds=2,
        round_ms=(ms, ms),
        spread=0.0,
        target=0.05,
        stable=stable,
        reasons=() if stable else (f"interval ±{half_width:.1%} wider than ±5%",),
        conditions=Conditions(
            load_avg=1.0,
            steal=steal,
            timed_cpus=(0,),
            busy_others=tuple(busy),
            interference=interference,
        ),
        ratio=None
        if ratio is None
        else RatioEstimate("MNv2", 10.0, ratio, 0.9, 1.1, 2),
    )
    return dataclasses.replace(
        _result("host", "x86_64", "CPU"), median_ms=ms, uncertainty=uncertainty
    )


class _Sequence:
    """A backend answering each path with its next result, in turn."""

    def __init__(self, answers):
        self.answers = {path: list(results) for path, results in answers.items()}
        self.paths = []

    def measure(self, path):
        self.paths.append(path)
        return self.answers[path].pop(0)


def test_an_unstable_latency_waits_and_is_measured_again_when_the_next_trial_ends():
    backend = _Sequence(
        {
            "a.tflite": [_adaptive(9.0, 0.2, False), _adaptive(8.0, 0.01, True)],
            "b.tflite": [_adaptive(5.0, 0.01, True)],
        }
    )
    lines = []
    scorer = LatencyScorer("measured", backend, remeasures=2, log=lines.append)
    # Trial 0 comes back unstable while trial 1 still trains: it is held back.
    assert scorer.settle([_outcome(0, "a.tflite")], {}, in_flight={0, 1}) == []
    assert list(scorer.held) == [0]
    assert lines == [
        "trial 0: latency 9.00 ms unstable (interval ±20.0% wider than ±5%); "
        "measured again when the next trial finishes (re-measure 1 of 2)"
    ]
    # Trial 1 ends: trial 0 is timed again first, stable now, and both finish.
    ready = scorer.settle([_outcome(1, "b.tflite")], {}, in_flight={0, 1})
    assert backend.paths == ["a.tflite", "a.tflite", "b.tflite"]
    assert [(o.trial_id, lat.result.median_ms, lat.attempts) for o, lat in ready] == [
        (0, 8.0, 2),
        (1, 5.0, 1),
    ]
    assert scorer.held == {}


def test_a_held_latency_is_measured_at_once_when_nothing_else_runs():
    backend = _Sequence(
        {"a.tflite": [_adaptive(9.0, 0.2, False), _adaptive(8.0, 0.01, True)]}
    )
    scorer = LatencyScorer("measured", backend, remeasures=1)
    assert scorer.settle([_outcome(0, "a.tflite")], {}, in_flight={0}) == []
    # The loop asks again with nothing finished and nothing else running.
    ready = scorer.settle([], {}, in_flight={0})
    assert [(o.trial_id, lat.result.median_ms) for o, lat in ready] == [(0, 8.0)]


def test_still_unstable_after_the_remeasures_the_most_precise_is_used_flagged():
    backend = _Sequence(
        {
            "a.tflite": [
                _adaptive(9.0, 0.20, False),
                _adaptive(7.0, 0.08, False),  # the most precise
                _adaptive(6.0, 0.30, False),
            ]
        }
    )
    lines = []
    scorer = LatencyScorer("measured", backend, remeasures=2, log=lines.append)
    assert scorer.settle([_outcome(0, "a.tflite")], {}, in_flight={0}) == []
    assert scorer.settle([], {}, in_flight={0}) == []  # 2nd: still unstable
    ((outcome, latency),) = scorer.settle([], {}, in_flight={0})  # 3rd: last
    assert (latency.result.median_ms, latency.attempts, latency.stable) == (
        7.0,
        3,
        False,
    )
    assert lines[-1] == (
        "trial 0: latency still unstable after 3 measurements; using the most "
        "precise (7.00 ms, flagged: interval ±8.0% wider than ±5%)"
    )


def test_without_remeasures_an_unstable_latency_is_used_at_once():
    backend = _Sequence({"a.tflite": [_adaptive(9.0, 0.2, False)]})
    scorer = LatencyScorer("measured", backend, remeasures=0)
    ((_, latency),) = scorer.settle([_outcome(0, "a.tflite")], {}, in_flight={0, 1})
    assert latency.stable is False and latency.attempts == 1


def test_a_ratio_reward_fails_a_trial_whose_latency_has_no_ratio():
    backend = _Sequence(
        {
            "a.tflite": [_adaptive(9.0, 0.01, True, ratio=1.02)],
            "b.tflite": [_adaptive(5.0, 0.01, True)],
        }
    )
    scorer = LatencyScorer("measured", backend, require_ratio=True)
    ready = scorer.settle(
        [_outcome(0, "a.tflite"), _outcome(1, "b.tflite")], {}, in_flight={0, 1}
    )
    assert ready[0][1].ratio == 1.02 and ready[0][1].error is None
    assert ready[1][1].result is None
    assert ready[1][1].error == (
        "the latency has no ratio to the reference model, which --target_ratio needs"
    )


def test_the_trial_line_names_the_ratio_interference_steal_and_an_unstable_verdict():
    from mnas.search.scoring import latency_note

    quiet = _adaptive(9.0, 0.01, True, ratio=1.234, steal=0.001).to_dict()
    assert latency_note(quiet) == " (1.234x ref)"
    noisy = _adaptive(9.0, 0.2, False, busy=((0, 0.65), (1, 1.0)), steal=0.07)
    assert latency_note(noisy.to_dict()) == (
        " [other process busy on CPU 0 (timed) 65%, CPU 1 100%] [steal 7.0%] "
        "[latency UNSTABLE]"
    )
    assert latency_note({"median_ms": 3.0}) == "" and latency_note(None) == ""
