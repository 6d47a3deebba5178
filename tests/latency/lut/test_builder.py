"""Building a space's table on a real backend; resuming; refusing another backend."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from mnas.latency.backends.host import HostBackend
from mnas.latency.lut.builder import (
    build_space_table,
    entry_backend,
    measure_missing,
    new_table_header,
    open_or_create,
)
from mnas.latency.lut.keys import space_keys
from mnas.latency.lut.table import LookupTable, LookupTableError
from mnas.testing.lut import FixedBackend, tiny_space

NUM_CLASSES = 10


def _entry_lines(path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if "key" in r]


def test_entry_backend_keeps_the_fingerprint_and_shortens_the_loop():
    host = HostBackend(num_threads=2, num_runs=50, min_secs=1.0, cpus=[0], seed=3)
    short = entry_backend(host)
    assert isinstance(short, HostBackend) and short is not host
    assert short.fingerprint() == host.fingerprint()
    opts = short.options
    assert (opts.num_runs, opts.min_secs, opts.warmup_runs) == (25, 0.05, 5)
    assert (opts.num_threads, opts.cpus, opts.seed) == (2, (0,), 3)
    fake = FixedBackend()
    assert entry_backend(fake) is fake
    # One round of an adaptive measurement: shorter still.
    rounds = entry_backend(host, rounds=True)
    assert rounds.fingerprint() == host.fingerprint()
    opts = rounds.options
    assert (opts.warmup_runs, opts.num_runs, opts.min_secs) == (2, 10, 0.02)
    assert entry_backend(fake, rounds=True) is fake


def test_new_table_header():
    space, backend = tiny_space(), FixedBackend()
    before = time.time()
    header = new_table_header(backend, space, NUM_CLASSES)
    assert header.fingerprint == backend.fingerprint()
    assert header.space_identity == space.identity()
    assert header.resolution == 32 and header.num_classes == NUM_CLASSES
    assert before - 1 <= header.created_unix <= time.time() + 1


def test_build_on_the_real_host_backend_resumes_after_an_interrupt(tmp_path):
    space = tiny_space(se_ratios=(0.0,))  # 13 entries, to keep it quick
    keys = space_keys(space, NUM_CLASSES)
    assert len(keys) == 13
    path = tmp_path / "host-tiny.lut.jsonl"
    backend = HostBackend()
    seen: list[tuple[int, int, str]] = []

    def interrupt_after_five(done, total, key):
        seen.append((done, total, key))
        if done == 5:
            raise KeyboardInterrupt

    table = open_or_create(path, backend, space, NUM_CLASSES)
    with pytest.raises(KeyboardInterrupt):
        build_space_table(table, space, backend, interrupt_after_five)
    assert [s[:2] for s in seen] == [(i, 13) for i in range(1, 6)]
    assert len(_entry_lines(path)) == 5

    resumed = open_or_create(path, backend, space, NUM_CLASSES)
    assert len(resumed) == 5
    report = build_space_table(resumed, space, backend)
    assert (report.total_entries, report.already_present, report.measured) == (
        13,
        5,
        8,
    )
    assert report.seconds > 0

    lines = _entry_lines(path)
    assert len(lines) == 13  # no key measured twice
    assert sorted(r["key"] for r in lines) == sorted(str(k) for k in keys)
    assert [r["key"] for r in lines[:5]] == [s[2] for s in seen]
    loaded = LookupTable.load(path)
    assert loaded.header.fingerprint == backend.fingerprint()
    assert loaded.header.space_identity == space.identity()
    assert loaded.header.num_classes == NUM_CLASSES
    for key in keys:
        entry = loaded.get(key)
        assert entry is not None, str(key)
        assert 0 < entry.min_ms <= entry.median_ms < 100
        assert entry.runs >= 25
    # Entries are real timings of different layers, not one constant.
    assert len({loaded.ms(k) for k in keys}) > 6

    # A complete table: nothing left to measure.
    again = build_space_table(open_or_create(path, backend, space), space, backend)
    assert (again.already_present, again.measured) == (13, 0)
    assert len(_entry_lines(path)) == 13


def test_open_or_create_refuses_another_backend_naming_both(tmp_path):
    space = tiny_space()
    path = tmp_path / "t.jsonl"
    open_or_create(path, FixedBackend(device="PHONE_A"), space, NUM_CLASSES)
    with pytest.raises(LookupTableError) as info:
        open_or_create(path, FixedBackend(device="PHONE_B"), space, NUM_CLASSES)
    message = str(info.value)
    assert message.startswith(
        f"{path} was measured on backend [fake; Phone; PHONE_A; 1 thread(s); "
        "runtime v1], not on [fake; Phone; PHONE_B; 1 thread(s); runtime v1]"
    )
    host = HostBackend()
    with pytest.raises(LookupTableError) as info:
        open_or_create(path, host, space, NUM_CLASSES)
    assert "[fake; Phone; PHONE_A;" in str(info.value)
    assert f"[host; {host.fingerprint().device_model};" in str(info.value)


def test_open_or_create_refuses_another_space_naming_both(tmp_path):
    path = tmp_path / "t.jsonl"
    backend = FixedBackend()
    open_or_create(path, backend, tiny_space(), NUM_CLASSES)
    other = tiny_space(kernel_sizes=(3, 5))
    with pytest.raises(LookupTableError) as info:
        open_or_create(path, backend, other, NUM_CLASSES)
    assert str(info.value) == (
        f"{path} was built for search space {tiny_space().identity()}, not for "
        f"{other.identity()}; build a table for this space with "
        "`mnas-latency --build_lut`"
    )
    assert tiny_space().identity() != other.identity()


def test_build_refuses_a_table_of_another_backend():
    space = tiny_space()
    table = LookupTable.create(
        None, new_table_header(FixedBackend(device="A"), space, NUM_CLASSES)
    )
    with pytest.raises(LookupTableError, match="was measured on backend"):
        build_space_table(table, space, FixedBackend(device="B"))


def test_measure_missing_measures_only_what_is_absent(tmp_path):
    space = tiny_space()
    backend = FixedBackend(ms=1.5)
    path = tmp_path / "t.jsonl"
    table = open_or_create(path, backend, space, NUM_CLASSES)
    keys = space_keys(space, NUM_CLASSES)[:4]
    progress = []
    assert measure_missing(table, [*keys[:2], keys[0]], backend) == 2
    assert len(backend.calls) == 2
    assert (
        measure_missing(table, keys, backend, lambda *a: progress.append((a[0], a[1])))
        == 2
    )
    assert progress == [(1, 2), (2, 2)]
    assert backend.calls == ["entry.tflite"] * 4
    assert [r["key"] for r in _entry_lines(path)] == [str(k) for k in keys]
    assert all(r["median_ms"] == 1.5 and r["runs"] == 2 for r in _entry_lines(path))
    assert measure_missing(table, keys, backend) == 0
    assert len(backend.calls) == 4


def test_rounds_measure_every_entry_again_and_resume_mid_round(tmp_path):
    space = tiny_space()
    keys = space_keys(space, NUM_CLASSES)
    path = tmp_path / "t.jsonl"
    backend = FixedBackend(ms=1.0)
    table = open_or_create(path, backend, space, NUM_CLASSES)
    seen = []

    def stop_in_round_two(done, total, message):
        seen.append(message.split(" ")[1])
        if message.startswith("round 2/2") and done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_space_table(table, space, backend, stop_in_round_two, rounds=2)
    assert seen.count("1/2") == len(keys) and seen.count("2/2") == 3
    resumed = open_or_create(path, backend, space, NUM_CLASSES)
    report = build_space_table(resumed, space, backend, rounds=2)
    assert report.measured == len(keys) - 3
    lines = _entry_lines(path)
    assert len(lines) == 2 * len(keys)
    assert all(resumed.measurements(k) == 2 for k in keys)
    with pytest.raises(ValueError, match="rounds must be >= 1, got 0"):
        build_space_table(resumed, space, backend, rounds=0)


def test_a_second_build_of_the_same_table_is_refused_naming_the_builder(tmp_path):
    from mnas.latency.lut.builder import table_lock

    space = tiny_space()
    backend = FixedBackend(ms=1.0)
    path = tmp_path / "t.jsonl"
    table = open_or_create(path, backend, space, NUM_CLASSES)
    with table_lock(str(path)):  # another build is running
        with pytest.raises(LookupTableError) as info:
            build_space_table(table, space, backend)
        assert str(info.value) == (
            f"lookup table {path} is in use by another process (pid {os.getpid()}); "
            f"wait for it to finish or stop it (lock file {path}.lock)"
        )
        assert backend.calls == []
    report = build_space_table(table, space, backend)  # the lock went with it
    assert report.measured == len(space_keys(space, NUM_CLASSES))


# -- adaptive entries ----------------------------------------------------------------


def _timing(remeasures=1, batch=4):
    from mnas.latency.lut.builder import AdaptiveTiming
    from mnas.latency.measure.adaptive import AdaptiveSettings

    settings = AdaptiveSettings(
        target=0.02, min_rounds=2, max_rounds=3, max_seconds=1e4, precheck_seconds=0
    )
    return AdaptiveTiming(
        settings, batch=batch, remeasures=remeasures, watch_interference=False
    )


def test_adaptive_entries_record_intervals_and_a_noisy_one_is_measured_again(
    tmp_path,
):
    from mnas.latency.lut.builder import measure_entries
    from mnas.testing.lut import NoisyPhaseBackend

    space = tiny_space()
    keys = space_keys(space, NUM_CLASSES)[:6]
    path = tmp_path / "t.jsonl"
    # The second entry's first measurement (3 rounds) falls in a noisy phase.
    backend = NoisyPhaseBackend({"entry00001.tflite": 3}, ms=1.5)
    table = open_or_create(path, backend, space, NUM_CLASSES)
    progress = []
    stats = measure_entries(
        table, keys, backend, lambda *a: progress.append(a), timing=_timing()
    )
    assert (stats.measured, stats.remeasured, stats.unstable) == (6, 1, 0)
    # Batches of 4 and 2 in interleaved rounds, then the noisy entry alone.
    assert backend.calls == [
        *["entry00000.tflite", "entry00001.tflite", "entry00002.tflite",
          "entry00003.tflite"],
        *["entry00001.tflite", "entry00002.tflite", "entry00003.tflite",
          "entry00000.tflite"],
        "entry00001.tflite",  # only the noisy one runs to max_rounds
        *["entry00004.tflite", "entry00005.tflite"],
        *["entry00005.tflite", "entry00004.tflite"],
        *["entry00001.tflite"] * 2,  # measured again after the pass: steady
    ]  # fmt: skip
    lines = _entry_lines(path)
    assert [r["key"] for r in lines] == [str(k) for k in keys] + [str(keys[1])]
    quiet = lines[0]
    assert (quiet["low_ms"], quiet["median_ms"], quiet["high_ms"]) == (1.5, 1.5, 1.5)
    assert (quiet["rounds"], quiet["stable"], quiet["runs"]) == (2, True, 4)
    noisy, again = lines[1], lines[-1]
    assert noisy["stable"] is False and noisy["rounds"] == 3
    assert noisy["low_ms"] < 1.5 < noisy["high_ms"]
    assert again["stable"] is True and again["median_ms"] == 1.5
    for loaded in (table, LookupTable.load(path)):
        assert loaded.get(keys[1]).stable is True
        assert loaded.measurements(keys[1]) == 2
    assert progress[-1] == (1, 1, f"again (unstable): {keys[1]}")
    assert [p[:2] for p in progress[:6]] == [(i, 6) for i in range(1, 7)]


def test_an_entry_noisy_in_every_measurement_is_kept_flagged(tmp_path):
    from mnas.latency.lut.builder import build_space_table
    from mnas.testing.lut import NoisyPhaseBackend

    space = tiny_space()
    keys = space_keys(space, NUM_CLASSES)
    backend = NoisyPhaseBackend({"entry00002.tflite": 1000}, ms=1.0)
    table = open_or_create(tmp_path / "t.jsonl", backend, space, NUM_CLASSES)
    report = build_space_table(
        table, space, backend, timing=_timing(remeasures=2, batch=8)
    )
    assert (report.measured, report.remeasured, report.unstable) == (
        len(keys),
        2,
        1,
    )
    assert table.unstable() == [str(keys[2])]
    assert table.measurements(keys[2]) == 3
    entry = table.get(keys[2])
    assert entry.stable is False and entry.low_ms < entry.median_ms < entry.high_ms


def test_a_predictor_measures_missing_entries_with_its_timing():
    from mnas.latency.lut.predictor import LatencyPredictor
    from mnas.testing.lut import NoisyPhaseBackend

    space = tiny_space()
    backend = NoisyPhaseBackend({}, ms=2.0)
    table = LookupTable.create(None, new_table_header(backend, space, NUM_CLASSES))
    predictor = LatencyPredictor(table, backend, timing=_timing())
    spec = space.decode(space.sample(np.random.default_rng(0)))
    keys = predictor.keys(spec)
    assert predictor.raw_ms(spec) == pytest.approx(2.0 * len(keys))
    assert all(table.get(k).rounds == 2 for k in keys)
