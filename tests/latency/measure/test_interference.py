"""Interference: per-CPU busy time minus our own, findings, a real busy loop."""

from __future__ import annotations

import os
import time

import pytest

from mnas.latency.measure.conditions import CpuTimes, Snapshot
from mnas.latency.measure.interference import (
    InterferenceMonitor,
    InterferenceSettings,
    busy_by_others,
    busy_neighbour,
    charge_own,
    own_cpu_ticks,
)


def test_own_cpu_ticks_counts_this_process():
    before = own_cpu_ticks()
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    assert own_cpu_ticks() - before >= 5  # 0.1 s of CPU is 10 ticks at USER_HZ 100


def snap(t, **cpus) -> Snapshot:
    """Snapshot with per-CPU (busy, idle) ticks, e.g. cpu0=(50, 50)."""
    per_cpu = {int(name[3:]): CpuTimes(b, i, 0) for name, (b, i) in cpus.items()}
    total = CpuTimes(
        sum(c.busy for c in per_cpu.values()), sum(c.idle for c in per_cpu.values()), 0
    )
    return Snapshot(t, total=total, cpus=per_cpu)


def test_own_time_is_subtracted_from_the_timed_cpu_first():
    before = snap(0.0, cpu0=(0, 0), cpu1=(0, 0))
    after = snap(1.0, cpu0=(100, 0), cpu1=(30, 70))
    # We used all of CPU 0; someone else 30% of CPU 1.
    assert busy_by_others(before, after, 0.0, 100.0, timed_cpus=[0]) == {
        0: 0.0,
        1: pytest.approx(0.3),
    }
    # Without our time, CPU 0 would look fully busy with someone else.
    assert busy_by_others(before, after, 0.0, 0.0, timed_cpus=[0])[0] == 1.0
    # More of ours than the timed CPU was busy: the rest was ours elsewhere.
    assert busy_by_others(before, after, 0.0, 120.0, timed_cpus=[0])[1] == (
        pytest.approx(0.1)
    )


def test_unpinned_own_time_is_charged_in_proportion_to_busy_time():
    deltas = {0: CpuTimes(10, 90, 0), 1: CpuTimes(90, 10, 0)}
    assert charge_own(deltas, 50.0, None) == {0: 5.0, 1: 45.0}
    assert charge_own(deltas, 50.0, [1]) == {0: 0.0, 1: 50.0}
    assert charge_own(deltas, 95.0, [1]) == {0: 5.0, 1: 90.0}
    assert charge_own(deltas, -3.0, [1]) == {0: 0.0, 1: 0.0}


def test_without_own_time_the_timed_cpus_are_not_judged():
    before = snap(0.0, cpu0=(0, 0), cpu4=(0, 0))
    after = snap(1.0, cpu0=(80, 20), cpu4=(100, 0))
    assert busy_by_others(before, after, None, None, timed_cpus=[4]) == {0: 0.8}


def test_too_short_windows_are_not_judged():
    before = snap(0.0, cpu0=(0, 0))
    after = snap(0.01, cpu0=(1, 0))
    assert busy_by_others(before, after, 0.0, 0.0, timed_cpus=None, min_ticks=5) == {}


class FakeReader:
    """Serves one prepared /proc/stat text per snapshot, in order."""

    where = "host"

    def __init__(self, stats: list[str], load: str = "1.5 1 1 1/1 1\n") -> None:
        self.stats = list(stats)
        self.load = load

    def read(self, patterns):
        return {"/proc/stat": self.stats.pop(0), "/proc/loadavg": self.load}

    def thermal_status(self):
        return None


def stat_text(cpu0: tuple[int, int, int], cpu1: tuple[int, int, int]) -> str:
    """/proc/stat with (busy, idle, steal) ticks per CPU."""
    rows = []
    total = tuple(a + b for a, b in zip(cpu0, cpu1))
    for name, (busy, idle, steal) in (("cpu ", total), ("cpu0", cpu0), ("cpu1", cpu1)):
        rows.append(f"{name} {busy} 0 0 {idle} 0 0 0 {steal} 0 0")
    return "\n".join(rows) + "\n"


def test_monitor_reports_a_busy_neighbour_before_and_during_timing(clock):
    # precheck: 2 snapshots; then begin + 3 marks.  We own CPU 0 (no own
    # ticks faked here, so the timed CPU 0 stays idle in the fake).
    stats = [
        stat_text((0, 0, 0), (0, 0, 0)),
        stat_text((0, 20, 0), (18, 2, 0)),  # before: CPU 1 90% busy
        stat_text((0, 20, 0), (18, 2, 0)),  # begin
        stat_text((0, 120, 0), (28, 92, 0)),  # round 1: CPU 1 10%
        stat_text((0, 220, 0), (108, 112, 0)),  # round 2: CPU 1 80%
        stat_text((0, 320, 0), (198, 122, 0)),  # round 3: CPU 1 90%
    ]
    monitor = InterferenceMonitor(
        FakeReader(stats),
        own=lambda: 0.0,
        timed_cpus=[0],
        clock=clock,
        sleep=clock.sleep,
        siblings=[0],
    )
    before = monitor.precheck(0.2)
    assert before.others == {0: 0.0, 1: pytest.approx(0.9)}
    monitor.begin()
    for _ in range(3):
        clock.now += 1.0
        monitor.mark("model 0")
    assert monitor.findings("model 0") == [
        "before timing: CPU 1 (not timed; may share a core or memory bandwidth) "
        "busy 90% with another process",
        "CPU 1 (not timed; may share a core or memory bandwidth) busy with another "
        "process in 2 of 3 rounds (up to 90%)",
    ]
    conditions = monitor.conditions("model 0")
    assert conditions.busy_others == ((1, pytest.approx(0.9)),)
    assert conditions.load_avg == 1.5 and conditions.steal == 0.0
    assert monitor.findings("another model") == monitor.findings("model 0")[:1]


def test_monitor_flags_high_steal_and_respects_watch_cpus(clock):
    stats = [
        stat_text((0, 0, 0), (0, 0, 0)),
        stat_text((10, 80, 10), (90, 0, 10)),
    ]
    monitor = InterferenceMonitor(
        FakeReader(stats),
        own=lambda: 0.0,
        timed_cpus=[0],
        settings=InterferenceSettings(steal_threshold=0.05, watch_cpus=(0,)),
        clock=clock,
        siblings=[0],
    )
    monitor.begin()
    window = monitor.mark("m")
    assert window.others == {0: pytest.approx(0.1)}  # CPU 1 is not watched
    assert window.steal == pytest.approx(0.1)
    assert monitor.findings() == ["hypervisor steal 10.0% of CPU time (threshold 5%)"]


def test_cpu_names_say_timed_and_sibling():
    monitor = InterferenceMonitor(
        FakeReader([]), own=None, timed_cpus=[2], siblings=[2, 3]
    )
    assert monitor._cpu_name(2) == "CPU 2 (timed)"
    assert monitor._cpu_name(3) == "CPU 3 (sibling of the timed CPU)"
    assert InterferenceMonitor(FakeReader([]))._cpu_name(1) == "CPU 1"


def test_settings_are_validated():
    with pytest.raises(ValueError, match=r"busy_threshold must be in \(0, 1\], got 0"):
        InterferenceSettings(busy_threshold=0)
    with pytest.raises(ValueError, match=r"steal_threshold must be in \(0, 1\], got 2"):
        InterferenceSettings(steal_threshold=2)


def test_real_busy_loop_on_another_cpu_is_detected():
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip(f"needs >= 2 CPUs to keep one busy, this process may use {cpus}")
    timed, busy_cpu = cpus[0], cpus[-1]
    with busy_neighbour(busy_cpu, seconds=4.0) as proc:
        time.sleep(0.3)  # let it start spinning
        monitor = InterferenceMonitor(timed_cpus=[timed])
        monitor.begin()
        time.sleep(1.0)
        window = monitor.mark("model 0")
    assert proc.returncode is not None  # killed when the block ended
    assert window.others[busy_cpu] >= 0.5
    assert any(
        f.startswith(f"CPU {busy_cpu} ") and "busy with another process" in f
        for f in monitor.findings("model 0")
    )
    refused = busy_neighbour(4096, seconds=1.0)
    with pytest.raises(ValueError, match="cannot start a busy process on CPU 4096"):
        refused.__enter__()
