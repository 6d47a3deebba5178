"""Another busy process while timing, and hypervisor steal.

``/proc/stat`` says how busy each CPU was; this process's own CPU time
(all its threads, plus its waited-for children: the subprocess backends)
is charged to the timed CPUs first, where the rounds run, and only what
exceeds their busy time to the other CPUs.  What is left was someone else.
Charging by CPU time rather than by the CPU each thread last ran on keeps
a thread that moved after its round from making the timed CPU look busy
with a stranger; the price is that other threads of this process (a second
pool worker) count as ours.  A monitor takes a snapshot before timing,
after a short quiet check, and after every round, so a result can say
"CPU 1 was busy with another process in 3 of 12 rounds" instead of
silently absorbing the slowdown.

On a phone (an :class:`AdbReader`) the benchmark's own CPU time is not
visible from the host, so the timed CPUs are assumed to be the benchmark's
and only the other CPUs are judged.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from mnas.latency.backends.affinity import sibling_cpus
from mnas.latency.measure.conditions import (
    Conditions,
    CpuTimes,
    LocalReader,
    Snapshot,
    SystemReader,
    steal_share,
    summarize_snapshots,
    take_snapshot,
)

#: Kernel clock ticks per second (USER_HZ), the unit of /proc/stat.
TICKS_PER_S = float(os.sysconf("SC_CLK_TCK"))

OwnCpuReader = Callable[[], float]


def own_cpu_ticks() -> float:
    """CPU time of this process and its waited-for children, in ticks."""
    t = os.times()
    return (t.user + t.system + t.children_user + t.children_system) * TICKS_PER_S


def charge_own(
    deltas: Mapping[int, CpuTimes], own_ticks: float, timed_cpus: Sequence[int] | None
) -> dict[int, float]:
    """Our ticks per CPU: timed CPUs first, then the rest, by busy time.

    Each CPU is charged at most its own busy ticks; within a group the
    ticks go in proportion to how busy each CPU was.  Without timed CPUs
    every CPU is one group.
    """
    timed = set(deltas) if timed_cpus is None else set(timed_cpus)
    charged = {cpu: 0.0 for cpu in deltas}
    remaining = max(own_ticks, 0.0)
    for group in (
        [c for c in deltas if c in timed],
        [c for c in deltas if c not in timed],
    ):
        busy = sum(max(deltas[c].busy, 0) for c in group)
        if busy <= 0 or remaining <= 0:
            continue
        take = min(remaining, busy)
        for cpu in group:
            charged[cpu] = take * max(deltas[cpu].busy, 0) / busy
        remaining -= take
    return charged


def busy_by_others(
    before: Snapshot,
    after: Snapshot,
    own_before: float | None,
    own_after: float | None,
    timed_cpus: Sequence[int] | None,
    min_ticks: float = 5.0,
) -> dict[int, float]:
    """CPU -> share of the window another process kept that CPU busy.

    Without an own-time reader (a phone) the timed CPUs are left out: their
    busy time is assumed to be the benchmark's.  CPUs whose window holds
    fewer than ``min_ticks`` ticks are left out too (too short to judge).
    """
    deltas = {
        cpu: after.cpus[cpu] - before.cpus[cpu]
        for cpu in after.cpus
        if cpu in before.cpus
    }
    known = own_before is not None and own_after is not None
    own = charge_own(deltas, own_after - own_before if known else 0.0, timed_cpus)
    timed = set(deltas) if timed_cpus is None else set(timed_cpus)
    out: dict[int, float] = {}
    for cpu, delta in deltas.items():
        if delta.total < min_ticks or (not known and cpu in timed):
            continue
        others = max(0.0, delta.busy - own[cpu])
        out[cpu] = min(1.0, others / delta.total)
    return out


@dataclass(frozen=True)
class InterferenceSettings:
    """When a busy neighbour or steal makes a measurement suspect.

    Attributes:
      busy_threshold: share of a window another process kept a CPU busy
        above which that window counts as disturbed.
      steal_threshold: share of CPU time stolen by the hypervisor above
        which the measurement counts as disturbed.
      watch_cpus: CPUs to judge; None judges every CPU (on a VM any vCPU
        may share a physical core with the timed one).
      min_ticks: shortest window (in kernel ticks per CPU) that is judged.
    """

    busy_threshold: float = 0.25
    steal_threshold: float = 0.05
    watch_cpus: tuple[int, ...] | None = None
    min_ticks: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 < self.busy_threshold <= 1.0:
            raise ValueError(
                f"busy_threshold must be in (0, 1], got {self.busy_threshold}"
            )
        if not 0.0 < self.steal_threshold <= 1.0:
            raise ValueError(
                f"steal_threshold must be in (0, 1], got {self.steal_threshold}"
            )


@dataclass(frozen=True)
class Window:
    """What happened between two snapshots (one round of one model)."""

    label: str
    seconds: float
    others: Mapping[int, float] = field(default_factory=dict)
    steal: float | None = None


class InterferenceMonitor:
    """Snapshots around timing; turns them into conditions and findings.

    Usage: :meth:`precheck` (optional quiet check before timing), then
    :meth:`begin` and :meth:`mark` after every round; :meth:`windows`,
    :meth:`findings` and :meth:`conditions` for one or all labels.
    """

    def __init__(
        self,
        reader: SystemReader | None = None,
        own: OwnCpuReader | None = own_cpu_ticks,
        timed_cpus: Sequence[int] | None = None,
        settings: InterferenceSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        siblings: Sequence[int] | None = None,
        thermal_status: bool = False,
    ) -> None:
        self.reader = reader if reader is not None else LocalReader()
        self.own = own
        self.timed_cpus = None if timed_cpus is None else tuple(sorted(set(timed_cpus)))
        self.settings = settings or InterferenceSettings()
        self.clock = clock
        self.sleep = sleep
        self.thermal_status = thermal_status
        if siblings is not None:
            self.siblings = tuple(siblings)
        elif self.timed_cpus is not None and isinstance(self.reader, LocalReader):
            self.siblings = sibling_cpus(self.timed_cpus, self.reader.root)
        else:
            self.siblings = self.timed_cpus or ()
        self.snapshots: list[Snapshot] = []
        self.before: Window | None = None
        self._windows: list[Window] = []
        self._last: tuple[Snapshot, float | None] | None = None

    def _take(self) -> tuple[Snapshot, float | None]:
        own = self.own() if self.own is not None else None
        snap = take_snapshot(self.reader, self.clock, self.thermal_status)
        return snap, own

    def _window(self, label, start, end) -> Window:
        others = busy_by_others(
            start[0], end[0], start[1], end[1], self.timed_cpus, self.settings.min_ticks
        )
        watch = self.settings.watch_cpus
        if watch is not None:
            others = {cpu: v for cpu, v in others.items() if cpu in watch}
        return Window(
            label, end[0].time - start[0].time, others, steal_share(start[0], end[0])
        )

    def precheck(self, seconds: float) -> Window:
        """Watches ``seconds`` before timing starts (nothing of ours runs)."""
        start = self._take()
        self.sleep(seconds)
        end = self._take()
        self.before = self._window("before timing", start, end)
        return self.before

    def begin(self) -> None:
        self._last = self._take()
        self.snapshots.append(self._last[0])

    def mark(self, label: str) -> Window:
        """Closes the window since the last mark (or :meth:`begin`)."""
        if self._last is None:
            self.begin()
        now = self._take()
        window = self._window(label, self._last, now)
        self._last = now
        self.snapshots.append(now[0])
        self._windows.append(window)
        return window

    def windows(self, label: str | None = None) -> list[Window]:
        return [w for w in self._windows if label is None or w.label == label]

    def busy_cpus(self, windows: Sequence[Window]) -> dict[int, tuple[int, float]]:
        """CPU -> (windows over the threshold, highest share) for ``windows``."""
        out: dict[int, tuple[int, float]] = {}
        for window in windows:
            for cpu, share in window.others.items():
                if share >= self.settings.busy_threshold:
                    count, worst = out.get(cpu, (0, 0.0))
                    out[cpu] = (count + 1, max(worst, share))
        return out

    def findings(self, label: str | None = None) -> list[str]:
        """Human-readable interference findings (empty when quiet)."""
        windows = self.windows(label)
        found = []
        if self.before is not None:
            for cpu, (_, share) in sorted(self.busy_cpus([self.before]).items()):
                found.append(
                    f"before timing: {self._cpu_name(cpu)} busy {share:.0%} "
                    "with another process"
                )
        for cpu, (count, share) in sorted(self.busy_cpus(windows).items()):
            found.append(
                f"{self._cpu_name(cpu)} busy with another process in {count} of "
                f"{len(windows)} rounds (up to {share:.0%})"
            )
        steal = self.steal()
        if steal is not None and steal > self.settings.steal_threshold:
            found.append(
                f"hypervisor steal {steal:.1%} of CPU time "
                f"(threshold {self.settings.steal_threshold:.0%})"
            )
        return found

    def steal(self) -> float | None:
        """Steal share over the whole measurement so far."""
        if len(self.snapshots) < 2:
            return None
        return steal_share(self.snapshots[0], self.snapshots[-1])

    def _cpu_name(self, cpu: int) -> str:
        if self.timed_cpus is None:
            return f"CPU {cpu}"
        if cpu in self.timed_cpus:
            return f"CPU {cpu} (timed)"
        if cpu in self.siblings:
            return f"CPU {cpu} (sibling of the timed CPU)"
        return f"CPU {cpu} (not timed; may share a core or memory bandwidth)"

    def conditions(self, label: str | None = None) -> Conditions:
        """Conditions over the measurement, with this label's findings."""
        base = summarize_snapshots(self.snapshots, self.reader.where, self.timed_cpus)
        busy = self.busy_cpus(self.windows(label))
        return Conditions(
            where=base.where,
            load_avg=base.load_avg,
            steal=base.steal,
            cpu_freq_mhz=base.cpu_freq_mhz,
            temp_c=base.temp_c,
            thermal_status=base.thermal_status,
            timed_cpus=base.timed_cpus,
            busy_others=tuple((cpu, share) for cpu, (_, share) in sorted(busy.items())),
            interference=tuple(self.findings(label)),
        )


_BUSY_LOOP = (
    "import time\n"
    "end = time.monotonic() + {seconds!r}\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)


@contextlib.contextmanager
def busy_neighbour(cpu: int, seconds: float) -> Iterator[subprocess.Popen]:
    """A process spinning on ``cpu`` for the block (at most ``seconds``).

    For checking the monitor and for the stability benchmark's disturbed
    phase: the loop ends by itself after ``seconds`` even if this process
    dies, and is killed when the block ends.
    """
    if cpu not in os.sched_getaffinity(0):
        raise ValueError(
            f"cannot start a busy process on CPU {cpu}: this process may use "
            f"{sorted(os.sched_getaffinity(0))}"
        )
    proc = subprocess.Popen([sys.executable, "-c", _BUSY_LOOP.format(seconds=seconds)])
    try:
        os.sched_setaffinity(proc.pid, {cpu})
        yield proc
    finally:
        proc.kill()
        proc.wait()
