"""The lookup-table file: round trips, append-only recovery, compatibility checks."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from mnas.latency.errors import LatencyError
from mnas.latency.lut.keys import LayerKey, classifier_key, head_key, stem_key
from mnas.latency.lut.table import (
    FORMAT_VERSION,
    Calibration,
    Entry,
    LookupTable,
    LookupTableError,
    MissingEntryError,
    TableHeader,
)
from mnas.latency.result import BackendFingerprint

FP = BackendFingerprint.create(
    "host", "x86_64", "Test CPU", 1, "1.2.3", {"delegate": "xnnpack"}
)
FP_PREMOVE = BackendFingerprint.create("host", "x86_64", "Test CPU", 1, "1.2.3")
OTHER_FP = BackendFingerprint.create("benchmark_model", "Pixel 1", "SERIAL9", 4, "abc")
SPACE = "tiny/v1/0123456789ab"
STEM = stem_key(16, 32, "relu")
HEAD = head_key(24, 32, 8, "relu")
CLASSIFIER = classifier_key(32, 8, 10)


def _header(**overrides) -> TableHeader:
    values = dict(
        fingerprint=FP,
        space_identity=SPACE,
        resolution=32,
        num_classes=10,
        created_unix=123.0,
    )
    values.update(overrides)
    return TableHeader(**values)


def _entry(ms: float) -> Entry:
    return Entry(median_ms=ms, min_ms=0.9 * ms, runs=25, measured_unix=1000.0)


def _lines(path) -> list[str]:
    return path.read_text().splitlines()


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "sub" / "t.lut.jsonl"
    table = LookupTable.create(path, _header())
    table.add(STEM, _entry(0.5))
    table.add(HEAD, _entry(0.25))
    calibration = Calibration(1.08, 0.1, {"r2": 0.99, "models": ["a", "b"]})
    table.set_calibration(calibration)

    loaded = LookupTable.load(path)
    assert loaded.header == _header()
    assert loaded.path == str(path)
    assert len(loaded) == 2
    assert loaded.keys() == (str(STEM), str(HEAD))
    assert loaded.get(STEM) == _entry(0.5)
    assert loaded.get(str(HEAD)) == _entry(0.25)
    assert loaded.get(CLASSIFIER) is None
    assert STEM in loaded and str(HEAD) in loaded and CLASSIFIER not in loaded
    assert loaded.calibration == calibration
    assert loaded.calibration.apply(10.0) == pytest.approx(10.9)
    assert loaded.ms(STEM) == 0.5
    assert loaded.sum_ms([STEM, HEAD, STEM]) == pytest.approx(1.25)


def test_file_is_json_lines_header_first(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    table.add(STEM, _entry(0.5))
    table.set_calibration(Calibration(2.0, 0.0))
    header, entry, calibration = (json.loads(line) for line in _lines(path))
    assert header["format"] == "mnas-latency-lut"
    assert header["format_version"] == FORMAT_VERSION == 1
    assert header["space"] == SPACE
    assert header["resolution"] == 32 and header["num_classes"] == 10
    assert header["fingerprint_key"] == FP.key()
    assert entry == {
        "key": "stem:k3_s2:32x32x3->16:relu",
        "median_ms": 0.5,
        "min_ms": 0.45,
        "runs": 25,
        "measured_unix": 1000.0,
    }
    assert calibration == {
        "calibration": {"scale": 2.0, "offset_ms": 0.0, "report": {}}
    }


def test_the_fastest_measurement_and_the_last_calibration_count(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    table.add(STEM, _entry(0.5))
    table.set_calibration(Calibration(1.5, 0.0))
    table.add(HEAD, _entry(0.3))
    table.add(STEM, _entry(0.7))  # slowed down by load: does not replace 0.5
    table.add(HEAD, _entry(0.2))
    table.set_calibration(Calibration(1.1, 0.2))
    assert len(_lines(path)) == 7  # append-only: nothing rewritten
    for candidate in (table, LookupTable.load(path)):
        assert len(candidate) == 2
        assert candidate.ms(STEM) == 0.5 and candidate.ms(HEAD) == 0.2
        assert candidate.measurements(STEM) == 2 and candidate.measurements("x") == 0
        assert candidate.calibration == Calibration(1.1, 0.2)


def test_a_torn_last_line_is_dropped_and_resuming_repairs_it(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    table.add(STEM, _entry(0.5))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"key": "head:k1_s1:8x8x24->32:relu", "median_')  # killed
    before = path.read_bytes()
    loaded = LookupTable.load(path)
    assert loaded.keys() == (str(STEM),)
    assert loaded.recovery_notes == [
        f"{path}: cut a torn last line (line 3, 46 bytes) left by an interrupted write"
    ]
    assert path.read_bytes() == before  # loading alone changes nothing
    # Appending after the torn line must not glue onto it.
    loaded.add(HEAD, _entry(0.25))
    loaded.add(CLASSIFIER, _entry(0.125))
    again = LookupTable.load(path)
    assert again.keys() == (str(STEM), str(HEAD), str(CLASSIFIER))
    assert len(_lines(path)) == 4
    assert all(json.loads(line) for line in _lines(path))


def test_an_unterminated_complete_last_line_is_kept_and_terminated(tmp_path):
    path = tmp_path / "t.jsonl"
    LookupTable.create(path, _header()).add(STEM, _entry(0.5))
    path.write_text(path.read_text().rstrip("\n"))  # the newline never made it
    loaded = LookupTable.load(path)
    assert loaded.ms(STEM) == 0.5
    loaded.add(HEAD, _entry(0.25))
    again = LookupTable.load(path)
    assert again.keys() == (str(STEM), str(HEAD))
    assert path.read_text().endswith("\n")


def test_a_corrupt_middle_line_raises(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    table.add(STEM, _entry(0.5))
    table.add(HEAD, _entry(0.25))
    lines = _lines(path)
    lines[1] = lines[1][:20]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LookupTableError) as info:
        LookupTable.load(path)
    assert str(info.value) == (
        f"{path}: line 2 is corrupt (Unterminated string starting at: line 1 "
        "column 9 (char 8)); only a torn last line is cut automatically: repair "
        "or remove this line by hand"
    )


def test_create_refuses_an_existing_file(tmp_path):
    path = tmp_path / "t.jsonl"
    LookupTable.create(path, _header())
    with pytest.raises(LookupTableError) as info:
        LookupTable.create(path, _header())
    assert str(info.value) == (
        f"{path} already exists; load it to resume, or delete it"
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    LookupTable.create(empty, _header())  # an empty file holds nothing to lose
    assert LookupTable.load(empty).header == _header()


def test_in_memory_table_writes_nothing(tmp_path):
    table = LookupTable.create(None, _header())
    table.add(STEM, _entry(0.5))
    table.set_calibration(Calibration(2.0, 0.0))
    assert table.path is None and len(table) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "{path} is empty: it has no header"),
        ('{"format": "other"}\n', "{path} is not a latency lookup table"),
        (
            '{"format": "mnas-latency-lut", "format_version": 7}\n',
            "{path} has lookup-table format version 7; this mnas reads version "
            "1: rebuild it with `mnas-latency --build_lut`",
        ),
    ],
)
def test_unusable_files(tmp_path, content, message):
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(LookupTableError) as info:
        LookupTable.load(path)
    assert str(info.value) == message.format(path=path)


def test_missing_file_says_how_to_build_it(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(LookupTableError) as info:
        LookupTable.load(path)
    assert str(info.value) == (
        f"no lookup table at {path}; build one with "
        f"`mnas-latency --build_lut --lut={path}`"
    )


# -- compatibility ----------------------------------------------------------------


def test_check_compatible_accepts_the_same_backend_and_space(tmp_path):
    table = LookupTable.create(tmp_path / "t.jsonl", _header())
    same = BackendFingerprint.create(
        "host", "x86_64", "Test CPU", 1, "1.2.3", {"delegate": "xnnpack"}
    )
    table.check_compatible(same, SPACE)
    table.check_compatible()  # nothing to check


def test_check_compatible_refuses_another_backend_naming_both(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    with pytest.raises(LookupTableError) as info:
        table.check_compatible(OTHER_FP, SPACE)
    assert str(info.value) == (
        f"{path} was measured on backend [host; x86_64; Test CPU; 1 thread(s); "
        "runtime 1.2.3; delegate=xnnpack], not on [benchmark_model; Pixel 1; "
        "SERIAL9; 4 thread(s); runtime abc]: its latencies do not transfer; "
        "build a table for this backend with `mnas-latency --build_lut`"
    )
    assert isinstance(info.value, LatencyError)


def test_check_compatible_refuses_a_changed_option(tmp_path):
    table = LookupTable.create(None, _header())
    pinned = BackendFingerprint.create(
        "host", "x86_64", "Test CPU", 1, "1.2.3", {"delegate": "xnnpack", "cpus": [0]}
    )
    with pytest.raises(LookupTableError) as info:
        table.check_compatible(pinned)
    assert "lookup table was measured on backend [host;" in str(info.value)
    assert "delegate=xnnpack]" in str(info.value)
    assert "cpus=0, delegate=xnnpack]" in str(info.value)


def test_check_compatible_refuses_another_space_naming_both(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    with pytest.raises(LookupTableError) as info:
        table.check_compatible(FP, "mnasnet/v1/ffffffffffff")
    assert str(info.value) == (
        f"{path} was built for search space {SPACE}, not for "
        "mnasnet/v1/ffffffffffff; build a table for this space with "
        "`mnas-latency --build_lut`"
    )


# -- missing entries ----------------------------------------------------------------


def test_missing_entry_error_names_the_key_and_the_fix(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    table.add(STEM, _entry(0.5))
    with pytest.raises(MissingEntryError) as info:
        table.sum_ms([STEM, HEAD, CLASSIFIER])
    assert info.value.keys == (HEAD,)
    assert str(info.value) == (
        f"lookup table {path} has no entry for head:k1_s1:8x8x24->32:relu; pass a "
        "latency backend so missing entries are measured and added, or rebuild "
        "the table with `mnas-latency --build_lut`"
    )
    with pytest.raises(MissingEntryError) as info:
        table.ms(CLASSIFIER)
    assert "has no entry for classifier:8x8x32->10;" in str(info.value)
    assert isinstance(info.value, LookupTableError)


def test_missing_entry_error_shows_three_keys_and_counts_the_rest():
    keys = [LayerKey("head", c, 32, 4) for c in (8, 16, 24, 32, 40)]
    error = MissingEntryError(keys, None)
    assert str(error).startswith(
        "lookup table has no entry for head:k1_s1:4x4x8->32:relu, "
        "head:k1_s1:4x4x16->32:relu, head:k1_s1:4x4x24->32:relu (+2 more); "
    )


def test_missing_lists_each_absent_key_once_in_order():
    table = LookupTable.create(None, _header())
    table.add(HEAD, _entry(0.25))
    assert table.missing([CLASSIFIER, HEAD, STEM, CLASSIFIER]) == [CLASSIFIER, STEM]
    assert table.missing([HEAD]) == []


# -- files written before the restructure ------------------------------------------

PREMOVE = os.path.join(os.path.dirname(__file__), "fixtures", "premove.lut.jsonl")
with open(PREMOVE, encoding="utf-8") as _handle:
    PREMOVE_LINES = _handle.read().splitlines()


def test_a_table_written_before_the_restructure_loads_and_grows(tmp_path):
    path = tmp_path / "t.lut.jsonl"
    shutil.copy(PREMOVE, path)
    before = path.read_text()
    table = LookupTable.load(path)
    assert table.header == _header(fingerprint=FP_PREMOVE)
    assert table.keys() == (str(STEM), str(HEAD), str(CLASSIFIER))
    assert table.ms(STEM) == 0.25 and table.measurements(STEM) == 2
    assert table.calibration.scale == 1.25
    assert table.recovery_notes == []
    table.add(HEAD, _entry(0.0625))
    assert path.read_text() == before + (
        '{"key": "head:k1_s1:8x8x24->32:relu", "measured_unix": 1000.0, '
        '"median_ms": 0.0625, "min_ms": 0.05625, "runs": 25}\n'
    )


def test_unreadable_table_files_are_refused_naming_the_file(tmp_path):
    with pytest.raises(LookupTableError) as info:
        LookupTable.load(tmp_path)  # a directory
    assert str(info.value) == f"{tmp_path} is a directory, not a lookup-table file"
    path = tmp_path / "t.jsonl"
    path.write_text("[]\n")
    with pytest.raises(LookupTableError) as info:
        LookupTable.load(path)
    assert str(info.value) == f"{path} is not a latency lookup table"
    path.write_text('{"format": "mnas-latency-lut", "format_version": 1}\n')
    with pytest.raises(LookupTableError) as info:
        LookupTable.load(path)
    assert str(info.value) == (
        f"{path}: line 1 is not a valid table header (KeyError('fingerprint'))"
    )
    lines = PREMOVE_LINES[:2] + ['{"key": "x", "median_ms": "fast"}']
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LookupTableError) as info:
        LookupTable.load(path)
    assert str(info.value) == (
        f"{path}: line 3 is not a valid table entry (could not convert string to "
        "float: 'fast')"
    )


# -- entries with an interval (adaptive measurement) --------------------------------


def _measured(ms: float, stable: bool | None) -> Entry:
    return Entry(ms, 0.9 * ms, 30, 1000.0, 0.95 * ms, 1.05 * ms, 3, stable)


def test_an_entry_line_records_its_interval_and_verdict(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    table.add(STEM, _measured(0.5, True))
    line = json.loads(_lines(path)[1])
    assert line == {
        "key": str(STEM),
        "median_ms": 0.5,
        "min_ms": 0.45,
        "runs": 30,
        "measured_unix": 1000.0,
        "low_ms": 0.475,
        "high_ms": 0.525,
        "rounds": 3,
        "stable": True,
    }
    assert LookupTable.load(path).get(STEM) == _measured(0.5, True)
    # An entry without an interval writes the old line, and old lines load
    # with the interval unknown (the pre-restructure fixture has such lines).
    assert set(_entry(0.5).to_dict()) == {
        "median_ms",
        "min_ms",
        "runs",
        "measured_unix",
    }
    old = LookupTable.load(PREMOVE).get(STEM)
    assert (old.low_ms, old.high_ms, old.rounds, old.stable) == (None,) * 4


def test_a_stable_measurement_beats_a_faster_unstable_one(tmp_path):
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, _header())
    table.add(STEM, _measured(0.4, False))  # fast, but timed in a noisy phase
    assert table.unstable() == [str(STEM)]
    table.add(STEM, _measured(0.5, True))
    table.add(STEM, _measured(0.3, False))  # faster still, still unstable
    table.add(HEAD, _measured(0.2, None))  # a plain measurement...
    table.add(HEAD, _measured(0.25, False))  # ...beats an unstable one
    table.add(HEAD, _measured(0.1, True))  # and a faster stable one beats it
    for candidate in (table, LookupTable.load(path)):
        assert candidate.get(STEM) == _measured(0.5, True)
        assert candidate.get(HEAD) == _measured(0.1, True)
        assert candidate.measurements(STEM) == 3 and candidate.unstable() == []


def test_an_entry_whose_verdict_is_not_a_boolean_is_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = PREMOVE_LINES[:2] + [
        '{"key": "x", "median_ms": 1, "min_ms": 1, "runs": 3, '
        '"measured_unix": 0, "stable": "yes"}'
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LookupTableError) as info:
        LookupTable.load(path)
    assert str(info.value) == (
        f"{path}: line 3 is not a valid table entry (stable must be true, false "
        "or null, got 'yes')"
    )
