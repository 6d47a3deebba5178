"""mnas-latency's measuring mode as library code: export, time, report, write."""

from __future__ import annotations

import json

import pytest

from mnas.latency.cache import CachedBackend, LatencyCache
from mnas.latency.config import LatencyConfig
from mnas.latency.measure.job import MeasureJob, measure, report, run_measure_job
from mnas.testing.lut import FixedBackend


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"not really a model, the fake backend never reads it")
    return str(path)


def test_job_times_an_architecture_or_a_file():
    with pytest.raises(ValueError, match="either an architecture or a file"):
        MeasureJob()
    with pytest.raises(ValueError) as info:
        MeasureJob(tflite="m.tflite", repeats=0)
    assert str(info.value) == "--repeats must be >= 1, got 0"


def test_repeats_bypass_the_cache_and_devices_are_rows(model_file, tmp_path):
    cache = LatencyCache(str(tmp_path / "c.sqlite"))
    phones = [
        CachedBackend(FixedBackend(3.0, device="P1"), cache),
        FixedBackend(5.0, device="P2"),
    ]
    rows, results = measure(phones, model_file, repeats=2)
    assert [(row[1], row[2], row[-1]) for row in rows] == [
        (1, 3.0, "fresh"),
        (2, 3.0, "fresh"),
        (1, 5.0, "fresh"),
        (2, 5.0, "fresh"),
    ]
    assert phones[0].backend.calls == ["m.tflite", "m.tflite"]
    once, _ = measure(phones[:1], model_file, repeats=1)
    again, _ = measure(phones[:1], model_file, repeats=1)
    assert (once[0][-1], again[0][-1]) == ("miss", "hit")
    text = report(MeasureJob(tflite=model_file, repeats=2), model_file, results, rows)
    assert "fingerprint: backend=fake device_model=Phone device_id=P1" in text
    assert "device_id=P2" in text
    assert "medians over 4 measurements: mean 4.000 ms, min 3.000, max 5.000" in text


def test_run_writes_latency_and_config(model_file, tmp_path, capsys):
    out = tmp_path / "out"
    job = MeasureJob(tflite=model_file, output_dir=str(out))
    config = LatencyConfig()
    assert run_measure_job(job, config, [FixedBackend(2.5)]) == 0
    assert "model: " + model_file in capsys.readouterr().out
    results = json.loads((out / "latency.json").read_text())
    assert [r["median_ms"] for r in results] == [2.5]
    written = json.loads((out / "config.json").read_text())
    assert written["latency"] == config.to_dict()
    assert (written["arch"], written["quantize"], written["repeats"]) == (None, None, 1)


def test_a_cached_unstable_result_is_measured_again_and_says_so(model_file, tmp_path):
    import dataclasses

    from mnas.latency.measure.uncertainty import Uncertainty

    class _Flagging(FixedBackend):
        """Flags its first result unstable, the later ones stable."""

        def measure(self, tflite_path):
            result = super().measure(tflite_path)
            stable = len(self.calls) > 1
            return dataclasses.replace(
                result,
                uncertainty=Uncertainty(
                    result.median_ms, 1.0, 4.0, 0.95, 1, (result.median_ms,), 0.0,
                    0.02, stable, () if stable else ("a busy neighbour",),
                ),
            )  # fmt: skip

    cached = CachedBackend(_Flagging(2.0), LatencyCache(str(tmp_path / "c.sqlite")))
    columns = [measure([cached], model_file, repeats=1)[0][0][-1] for _ in range(3)]
    assert columns == ["miss", "re-measured", "hit"]
