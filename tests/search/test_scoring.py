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
