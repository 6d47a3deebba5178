"""Latency of finished candidates: measured one by one, on a device pool, or
predicted; a failure fails only its trial."""

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
