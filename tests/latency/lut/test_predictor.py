"""The lookup-table predictor: sums, missing entries, calibration, backend view."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnas.latency.errors import LatencyError
from mnas.latency.lut.builder import new_table_header
from mnas.latency.lut.keys import keys_for_spec
from mnas.latency.lut.predictor import (
    LatencyPredictor,
    LookupTableBackend,
    describe_calibration,
    fit_calibration,
)
from mnas.latency.lut.table import (
    Calibration,
    Entry,
    LookupTable,
    LookupTableError,
    MissingEntryError,
)
from mnas.testing.latency_models import synthetic_table
from mnas.testing.lut import FixedBackend, tiny_space

NUM_CLASSES = 10
# conv, k3, SE, identity, x1.0, +1 layer | dsconv, k3, no SE, none, x1.0, +0
ACTIONS = (0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0)


@pytest.fixture
def space():
    return tiny_space()


@pytest.fixture
def spec(space):
    return space.decode(ACTIONS)


def _table_with(path, backend, space, drop=()):
    """The synthetic entries of ``space`` under ``backend``'s fingerprint,
    written to ``path`` without the keys in ``drop``."""
    source = synthetic_table(space, NUM_CLASSES)
    table = LookupTable.create(path, new_table_header(backend, space, NUM_CLASSES))
    dropped = {str(k) for k in drop}
    for key in source.keys():  # noqa: SIM118 (a table, not a dict)
        if key not in dropped:
            table.add(key, source.get(key))
    return table, source


def _entry_keys(path) -> list[str]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["key"] for r in records if "key" in r]


def test_keys_of_the_tiny_spec(spec):
    keys = [str(k) for k in keys_for_spec(spec, num_classes=NUM_CLASSES)]
    assert keys == [
        "stem:k3_s2:32x32x3->16:relu",
        "layer:conv_k3_s1_se4_add:16x16x16->16:relu",
        "layer:conv_k3_s1_se4_add:16x16x16->16:relu",
        "layer:dsconv_k3_s2_se0_none:16x16x16->24:relu",
        "head:k1_s1:8x8x24->32:relu",
        "classifier:8x8x32->10",
    ]


def test_predict_is_the_calibrated_sum(space, spec):
    table = synthetic_table(space, NUM_CLASSES)
    keys = keys_for_spec(spec, num_classes=NUM_CLASSES)
    raw = sum(table.get(k).median_ms for k in keys)
    predictor = LatencyPredictor(table)
    assert predictor.raw_ms(spec) == pytest.approx(raw, rel=1e-12)
    assert predictor.predict(spec) == pytest.approx(raw, rel=1e-12)  # uncalibrated
    table.set_calibration(Calibration(1.25, 0.5))
    assert predictor.predict(spec) == pytest.approx(1.25 * raw + 0.5, rel=1e-12)
    assert predictor.raw_ms(spec) == pytest.approx(raw, rel=1e-12)
    raw_only = LatencyPredictor(table, calibrated=False)
    assert raw_only.calibration == Calibration()
    assert raw_only.predict(spec) == pytest.approx(raw, rel=1e-12)


def test_breakdown_lists_every_layer(space, spec):
    table = synthetic_table(space, NUM_CLASSES)
    predictor = LatencyPredictor(table)
    rows = predictor.breakdown(spec)
    keys = keys_for_spec(spec, num_classes=NUM_CLASSES)
    assert [key for key, _ in rows] == [str(k) for k in keys]
    assert [ms for _, ms in rows] == [table.get(k).median_ms for k in keys]
    assert sum(ms for _, ms in rows) == pytest.approx(predictor.raw_ms(spec))


def test_keys_default_to_the_tables_resolution_and_classes(space, spec):
    predictor = LatencyPredictor(synthetic_table(space, NUM_CLASSES))
    assert predictor.keys(spec) == keys_for_spec(spec, 32, NUM_CLASSES)
    assert predictor.keys(spec, 64, 5)[0].size == 64
    assert str(predictor.keys(spec, 64, 5)[-1]) == "classifier:16x16x32->5"


def test_missing_entries_are_measured_once_and_appended(tmp_path, space, spec):
    backend = FixedBackend(ms=2.0)
    keys = keys_for_spec(spec, num_classes=NUM_CLASSES)
    drop = [keys[1], keys[3], keys[4]]  # a repeated layer, the strided one, head
    path = tmp_path / "t.jsonl"
    table, source = _table_with(path, backend, space, drop)
    before = _entry_keys(path)
    predictor = LatencyPredictor(table, backend)

    raw = predictor.raw_ms(spec)
    assert backend.calls == ["entry.tflite"] * 3
    assert _entry_keys(path) == before + [str(k) for k in drop]
    expected = sum(
        2.0 if k in drop else source.get(k).median_ms for k in keys
    )  # keys[1] twice
    assert raw == pytest.approx(expected, rel=1e-12)
    assert predictor.predict(spec) == pytest.approx(expected, rel=1e-12)
    assert len(backend.calls) == 3  # nothing measured twice
    reloaded = LookupTable.load(path)
    assert all(reloaded.get(k).median_ms == 2.0 for k in drop)
    assert LatencyPredictor(reloaded).raw_ms(spec) == pytest.approx(expected)


def test_without_a_backend_a_missing_entry_names_the_key(tmp_path, space, spec):
    backend = FixedBackend()
    keys = keys_for_spec(spec, num_classes=NUM_CLASSES)
    path = tmp_path / "t.jsonl"
    table, _ = _table_with(path, backend, space, [keys[3]])
    predictor = LatencyPredictor(table)
    with pytest.raises(MissingEntryError) as info:
        predictor.predict(spec)
    assert info.value.keys == (keys[3],)
    assert str(info.value) == (
        f"lookup table {path} has no entry for "
        "layer:dsconv_k3_s2_se0_none:16x16x16->24:relu; pass a latency backend "
        "so missing entries are measured and added, or rebuild the table with "
        "`mnas-latency --build_lut`"
    )
    with pytest.raises(MissingEntryError):
        predictor.breakdown(spec)
    assert backend.calls == []


def test_missing_error_lists_all_missing_keys(tmp_path, space, spec):
    keys = keys_for_spec(spec, num_classes=NUM_CLASSES)
    table, _ = _table_with(None, FixedBackend(), space, [keys[4], keys[0]])
    with pytest.raises(MissingEntryError) as info:
        LatencyPredictor(table).raw_ms(spec)
    assert info.value.keys == (keys[0], keys[4])
    assert "has no entry for stem:k3_s2:32x32x3->16:relu, head:k1_s1:8x8x24->32" in (
        str(info.value)
    )


def test_a_backend_other_than_the_tables_is_refused(space):
    table, _ = _table_with(None, FixedBackend(device="A"), space)
    with pytest.raises(LookupTableError) as info:
        LatencyPredictor(table, FixedBackend(device="B"))
    assert "[fake; Phone; A; 1 thread(s); runtime v1], not on [fake; Phone; B;" in (
        str(info.value)
    )


# -- calibration --------------------------------------------------------------------


def test_fit_recovers_scale_and_offset_exactly():
    raw = [1.0, 2.0, 3.5, 5.0, 8.0]
    measured = [1.08 * r + 0.25 for r in raw]
    calibration = fit_calibration(raw, measured, names=list("abcde"), with_offset=True)
    assert calibration.scale == pytest.approx(1.08, abs=1e-12)
    assert calibration.offset_ms == pytest.approx(0.25, abs=1e-12)
    report = calibration.report
    assert report["models"] == ["a", "b", "c", "d", "e"]
    assert report["raw_ms"] == raw
    assert report["measured_ms"] == [round(m, 4) for m in measured]
    assert report["with_offset"] is True
    assert report["r2"] == 1.0
    assert report["mean_abs_rel_error"] == 0.0
    assert report["max_abs_rel_error"] == 0.0
    ratio = np.mean(np.asarray(measured) / np.asarray(raw))
    assert report["uncalibrated_ratio_mean"] == round(float(ratio), 4)


def test_the_default_fit_is_the_scale_only():
    raw, measured = [1.0, 2.0, 4.0], [1.2, 2.1, 4.4]
    calibration = fit_calibration(raw, measured)
    scale = (1.2 + 4.2 + 17.6) / 21.0  # raw·measured / raw·raw
    assert calibration.scale == pytest.approx(scale, rel=1e-12)
    assert calibration.offset_ms == 0.0
    assert calibration.report["with_offset"] is False
    assert calibration.report["models"] == []
    errors = [abs(scale * r - m) / m for r, m in zip(raw, measured)]
    assert calibration.report["max_abs_rel_error"] == round(max(errors), 4)
    assert calibration.report["mean_abs_rel_error"] == round(np.mean(errors), 4)
    forced = fit_calibration([1.0, 2.0, 4.0], [1.5, 2.5, 4.5], with_offset=True)
    assert forced.scale == pytest.approx(1.0) and forced.offset_ms == pytest.approx(0.5)
    five = fit_calibration([1, 2, 3, 4, 5], [2.0, 3.0, 4.0, 5.0, 6.0])
    assert five.offset_ms == 0.0 and five.report["with_offset"] is False
    with pytest.raises(ValueError, match="fitting an offset needs at least 2 models"):
        fit_calibration([1.0], [1.1], with_offset=True)


def test_noisy_fit_reports_its_quality():
    rng = np.random.default_rng(0)
    raw = rng.uniform(2, 10, 20)
    measured = 1.1 * raw * rng.uniform(0.95, 1.05, 20)
    calibration = fit_calibration(raw, measured)
    assert 1.0 < calibration.scale < 1.2
    assert 0.9 < calibration.report["r2"] < 1.0
    assert 0 < calibration.report["mean_abs_rel_error"] < 0.05


@pytest.mark.parametrize(
    "raw, measured, message",
    [
        ([1.0, 2.0], [1.0], "need equally long, non-empty raw and measured sequences"),
        ([], [], "need equally long, non-empty raw and measured sequences"),
        ([1.0, 0.0], [1.0, 1.0], "latencies must be positive"),
        ([1.0, 2.0], [1.0, -1.0], "latencies must be positive"),
    ],
)
def test_fit_rejects_bad_input(raw, measured, message):
    with pytest.raises(ValueError) as info:
        fit_calibration(raw, measured)
    assert str(info.value) == message


def test_describe_calibration():
    assert describe_calibration(Calibration()) == "uncalibrated (scale 1, offset 0)"
    calibration = fit_calibration([1.0, 2.0, 3.0], [1.1, 2.2, 3.3])
    assert describe_calibration(calibration) == (
        "measured ≈ 1.1000 × sum +0.000 ms on 3 models (R² 1.0, mean |err| 0.0%, "
        "max 0.0%; raw sums were 1.1× short)"
    )


def test_calibration_survives_the_file(tmp_path, space):
    path = tmp_path / "t.jsonl"
    table, _ = _table_with(path, FixedBackend(), space)
    calibration = fit_calibration(
        [1, 2, 3, 4], [1.5, 2.5, 3.5, 4.5], list("wxyz"), with_offset=True
    )
    table.set_calibration(calibration)
    loaded = LookupTable.load(path).calibration
    assert loaded.scale == pytest.approx(1.0) and loaded.offset_ms == pytest.approx(0.5)
    assert loaded.report == calibration.report


# -- the predictor as a backend ---------------------------------------------------------


def test_lookup_table_backend(tmp_path, space, spec):
    path = tmp_path / "t.jsonl"
    table, _ = _table_with(path, FixedBackend(), space)
    table.set_calibration(Calibration(1.5, 0.0))
    predictor = LatencyPredictor(table)
    backend = LookupTableBackend(predictor)
    fingerprint = backend.fingerprint()
    assert fingerprint.backend == "lut(fake)"
    assert fingerprint.device_id == "FAKE1"
    assert ("table", str(path)) in fingerprint.options
    assert fingerprint.key() != FixedBackend().fingerprint().key()
    result = backend.measure_spec(spec)
    assert result.median_ms == pytest.approx(predictor.predict(spec), rel=1e-12)
    assert result.runs == 1
    assert result.fingerprint == fingerprint
    with pytest.raises(LatencyError) as info:
        backend.measure("model.tflite")
    assert str(info.value).startswith(
        "the lookup-table predictor cannot time model.tflite: it predicts "
        "architectures; call measure_spec(spec), or use a measuring backend"
    )


def test_lookup_table_backend_refuses_an_invalid_prediction(space, spec):
    table, _ = _table_with(None, FixedBackend(), space)
    table.set_calibration(Calibration(-1.0, 0.0))
    with pytest.raises(LatencyError) as info:
        LookupTableBackend(LatencyPredictor(table)).measure_spec(spec)
    assert "ms for tiny-candidate is invalid" in str(info.value)
    assert str(info.value).startswith("predicted latency -")


def test_synthetic_table_is_complete_and_says_so(space):
    table = synthetic_table(space, NUM_CLASSES)
    assert table.header.fingerprint.backend == "synthetic"
    assert table.header.space_identity == space.identity()
    assert len(table) == 23
    again = synthetic_table(space, NUM_CLASSES)
    assert all(table.get(k) == again.get(k) for k in table.keys())  # noqa: SIM118
    assert isinstance(table.get(table.keys()[0]), Entry)
