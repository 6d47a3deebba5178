"""The conditions a latency was measured in: load, steal, frequency, heat.

A number without its conditions cannot be judged: the same model measured
14.5 ms one day and 9.2 ms three days earlier on this project's VM.  The
readers here take snapshots of what the OS exposes (``/proc/stat``,
``/proc/loadavg``, cpufreq, thermal zones, and on a phone ``dumpsys
thermalservice``) from the host or over adb; :class:`Conditions` is the
JSON-safe summary a result carries.  Every reader takes a ``root`` so that
tests can point it at a fake tree.
"""

from __future__ import annotations

import glob
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

STAT = "/proc/stat"
LOADAVG = "/proc/loadavg"
CPUFREQ = "/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq"
THERMAL_TEMP = "/sys/class/thermal/thermal_zone*/temp"
THERMAL_TYPE = "/sys/class/thermal/thermal_zone*/type"
SNAPSHOT_FILES = (STAT, LOADAVG, CPUFREQ, THERMAL_TEMP, THERMAL_TYPE)

#: Android's thermal status levels (PowerManager.THERMAL_STATUS_*).
THERMAL_STATUS_NAMES = (
    "none",
    "light",
    "moderate",
    "severe",
    "critical",
    "emergency",
    "shutdown",
)

_SAFE_PATTERN = re.compile(r"^[A-Za-z0-9_/*.\-]+$")
_FILE_MARKER = "@@mnas-file@@ "
_CPU_IN_PATH = re.compile(r"/cpu(\d+)/")
_ZONE_IN_PATH = re.compile(r"/(thermal_zone\d+)/")
_THERMAL_STATUS = re.compile(r"Thermal Status:\s*(\d+)")


class SystemReader(Protocol):
    """Reads OS files (glob patterns allowed) on the machine that times."""

    where: str

    def read(self, patterns: Sequence[str]) -> dict[str, str]:
        """Path -> text of every readable file matching the patterns."""

    def thermal_status(self) -> int | None:
        """Android's thermal status (0 none .. 6 shutdown), None if unknown."""


class LocalReader:
    """Reads this machine's files; ``root`` prefixes every path (tests)."""

    where = "host"

    def __init__(self, root: str = "") -> None:
        self.root = root.rstrip("/")

    def read(self, patterns: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for pattern in patterns:
            for path in sorted(glob.glob(self.root + pattern)):
                try:
                    with open(path, errors="replace") as handle:
                        text = handle.read()
                except OSError:
                    continue
                out[path[len(self.root) :]] = text
        return out

    def thermal_status(self) -> int | None:
        return None


class AdbReader:
    """Reads a phone's files with one ``adb shell`` call per snapshot.

    ``client`` needs only ``run(*args, timeout_s=None)`` returning an object
    with ``returncode`` and ``output`` (:class:`AdbClient` does).  Patterns
    are this module's constants, checked against a safe character set
    because the remote shell must expand their globs unquoted.
    """

    def __init__(self, client: Any, root: str = "", timeout_s: float = 15.0) -> None:
        self.client = client
        self.root = root.rstrip("/")
        self.timeout_s = timeout_s
        self.where = f"adb:{getattr(client, 'requested_serial', None) or 'device'}"

    def script(self, patterns: Sequence[str]) -> str:
        """The remote shell loop that prints every readable file, marked."""
        for pattern in patterns:
            if not _SAFE_PATTERN.match(pattern):
                raise ValueError(f"unsafe path pattern for a remote shell: {pattern!r}")
        words = " ".join(self.root + p for p in patterns)
        marker = shlex.quote(_FILE_MARKER)
        return (
            f'for f in {words}; do if [ -r "$f" ]; then '
            f'echo {marker}"$f"; cat "$f" 2>/dev/null; echo; fi; done'
        )

    def read(self, patterns: Sequence[str]) -> dict[str, str]:
        done = self.client.run("shell", self.script(patterns), timeout_s=self.timeout_s)
        if done.returncode != 0:
            return {}
        return split_marked_output(done.output, self.root)

    def thermal_status(self) -> int | None:
        done = self.client.run(
            "shell", "dumpsys thermalservice 2>/dev/null", timeout_s=self.timeout_s
        )
        if done.returncode != 0:
            return None
        return parse_thermal_status(done.output)


def split_marked_output(text: str, root: str = "") -> dict[str, str]:
    """Splits the output of :meth:`AdbReader.script` back into files."""
    out: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(_FILE_MARKER):
            if current is not None:
                out[current] = "\n".join(lines).strip("\n") + "\n"
            current = line[len(_FILE_MARKER) :].strip()
            current = (
                current[len(root) :] if root and current.startswith(root) else current
            )
            lines = []
        elif current is not None:
            lines.append(line)
    if current is not None:
        out[current] = "\n".join(lines).strip("\n") + "\n"
    return out


def parse_thermal_status(text: str) -> int | None:
    """``Thermal Status: N`` from ``dumpsys thermalservice``, or None."""
    match = _THERMAL_STATUS.search(text)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative time of one CPU (or all) from ``/proc/stat``, in ticks."""

    busy: int
    idle: int
    steal: int

    @property
    def total(self) -> int:
        return self.busy + self.idle + self.steal

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(
            self.busy - other.busy, self.idle - other.idle, self.steal - other.steal
        )


def parse_proc_stat(text: str) -> tuple[CpuTimes | None, dict[int, CpuTimes]]:
    """(all CPUs, per CPU) times from ``/proc/stat`` text.

    busy = user + nice + system + irq + softirq (guest time is already in
    user); idle = idle + iowait; steal is what the hypervisor gave to
    someone else while this VM wanted to run.
    """
    total: CpuTimes | None = None
    per_cpu: dict[int, CpuTimes] = {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        name, *fields = line.split()
        values = [int(v) for v in fields[:8]] + [0] * max(0, 8 - len(fields))
        user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
        times = CpuTimes(user + nice + system + irq + softirq, idle + iowait, steal)
        if name == "cpu":
            total = times
        elif name[3:].isdigit():
            per_cpu[int(name[3:])] = times
    return total, per_cpu


def parse_loadavg(text: str) -> float | None:
    """The 1-minute load average from ``/proc/loadavg`` text."""
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Snapshot:
    """What the OS said at one moment (``time`` from the caller's clock)."""

    time: float
    total: CpuTimes | None = None
    cpus: Mapping[int, CpuTimes] = field(default_factory=dict)
    load: float | None = None
    freqs_mhz: Mapping[int, float] = field(default_factory=dict)
    temps_c: Mapping[str, float] = field(default_factory=dict)
    thermal_status: int | None = None


def take_snapshot(
    reader: SystemReader, clock: Callable[[], float], thermal_status: bool = False
) -> Snapshot:
    """Reads every snapshot file once (one adb call on a phone)."""
    files = reader.read(SNAPSHOT_FILES)
    total, cpus = parse_proc_stat(files.get(STAT, ""))
    freqs: dict[int, float] = {}
    temps: dict[str, float] = {}
    names: dict[str, str] = {}
    for path, text in files.items():
        if path.endswith("/cpufreq/scaling_cur_freq"):
            cpu = _CPU_IN_PATH.search(path)
            value = _number(text)
            if cpu and value is not None and value > 0:
                freqs[int(cpu.group(1))] = value / 1e3  # kHz -> MHz
        elif path.startswith("/sys/class/thermal/"):
            zone = _ZONE_IN_PATH.search(path)
            if zone is None:
                continue
            if path.endswith("/type"):
                names[zone.group(1)] = text.strip()
            else:
                value = _number(text)
                if value is not None:
                    # Millidegrees on most kernels; a few report degrees.
                    temps[zone.group(1)] = value / 1e3 if abs(value) > 200 else value
    named = {names.get(zone, zone): celsius for zone, celsius in temps.items()}
    return Snapshot(
        time=clock(),
        total=total,
        cpus=cpus,
        load=parse_loadavg(files.get(LOADAVG, "")),
        freqs_mhz=freqs,
        temps_c=named,
        thermal_status=reader.thermal_status() if thermal_status else None,
    )


def _number(text: str) -> float | None:
    try:
        return float(text.strip().split()[0])
    except (IndexError, ValueError):
        return None


def steal_share(first: Snapshot, last: Snapshot) -> float | None:
    """Share of CPU time the hypervisor stole between two snapshots."""
    if first.total is None or last.total is None:
        return None
    delta = last.total - first.total
    return delta.steal / delta.total if delta.total > 0 else None


# --------------------------------------------------------------------------
# What a result carries
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    """The conditions of one measurement, JSON-safe.

    Attributes:
      where: ``host`` or ``adb:SERIAL``.
      load_avg: 1-minute load average at the end (this process counts).
      steal: share of CPU time stolen by the hypervisor while timing.
      cpu_freq_mhz: (lowest, highest) current frequency seen over the CPUs
        and snapshots; None where the OS exposes no cpufreq (most VMs).
      temp_c: hottest thermal zone at the end, None without thermal zones.
      thermal_status: worst Android thermal status seen (0 = none).
      timed_cpus: CPUs the backend pins to; None when not pinned.
      busy_others: CPU -> highest share of a round another process kept
        that CPU busy (only CPUs where it passed the threshold).
      interference: human-readable findings (empty when quiet).
    """

    where: str = "host"
    load_avg: float | None = None
    steal: float | None = None
    cpu_freq_mhz: tuple[float, float] | None = None
    temp_c: float | None = None
    thermal_status: int | None = None
    timed_cpus: tuple[int, ...] | None = None
    busy_others: tuple[tuple[int, float], ...] = ()
    interference: tuple[str, ...] = ()

    def describe(self) -> str:
        """Short text for a summary line: load, steal, frequency, heat."""
        parts = []
        if self.load_avg is not None:
            parts.append(f"load {self.load_avg:.1f}")
        if self.steal is not None:
            parts.append(f"steal {self.steal:.1%}")
        if self.cpu_freq_mhz is None:
            parts.append("freq unavailable")
        else:
            low, high = self.cpu_freq_mhz
            freq = (
                f"{low:.0f}" if round(low) == round(high) else f"{low:.0f}-{high:.0f}"
            )
            parts.append(f"freq {freq} MHz")
        if self.temp_c is not None:
            parts.append(f"{self.temp_c:.0f} C")
        if self.thermal_status is not None:
            parts.append(f"thermal {thermal_status_name(self.thermal_status)}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "load_avg": self.load_avg,
            "steal": self.steal,
            "cpu_freq_mhz": None
            if self.cpu_freq_mhz is None
            else list(self.cpu_freq_mhz),
            "temp_c": self.temp_c,
            "thermal_status": self.thermal_status,
            "timed_cpus": None if self.timed_cpus is None else list(self.timed_cpus),
            "busy_others": [[cpu, share] for cpu, share in self.busy_others],
            "interference": list(self.interference),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conditions:
        def opt(name: str) -> float | None:
            value = data.get(name)
            return None if value is None else float(value)

        freq = data.get("cpu_freq_mhz")
        cpus = data.get("timed_cpus")
        status = data.get("thermal_status")
        return cls(
            where=str(data.get("where", "host")),
            load_avg=opt("load_avg"),
            steal=opt("steal"),
            cpu_freq_mhz=None if freq is None else (float(freq[0]), float(freq[1])),
            temp_c=opt("temp_c"),
            thermal_status=None if status is None else int(status),
            timed_cpus=None if cpus is None else tuple(int(c) for c in cpus),
            busy_others=tuple(
                (int(cpu), float(share)) for cpu, share in data.get("busy_others", ())
            ),
            interference=tuple(str(s) for s in data.get("interference", ())),
        )


def thermal_status_name(status: int) -> str:
    if 0 <= status < len(THERMAL_STATUS_NAMES):
        return THERMAL_STATUS_NAMES[status]
    return f"status {status}"


def summarize_snapshots(
    snapshots: Sequence[Snapshot], where: str, timed_cpus: Sequence[int] | None
) -> Conditions:
    """Load, steal, frequency range and heat over a measurement."""
    if not snapshots:
        return Conditions(where=where, timed_cpus=_cpus(timed_cpus))
    first, last = snapshots[0], snapshots[-1]
    freqs = [mhz for snap in snapshots for mhz in snap.freqs_mhz.values()]
    statuses = [s.thermal_status for s in snapshots if s.thermal_status is not None]
    return Conditions(
        where=where,
        load_avg=last.load,
        steal=steal_share(first, last) if len(snapshots) > 1 else None,
        cpu_freq_mhz=(min(freqs), max(freqs)) if freqs else None,
        temp_c=max(last.temps_c.values()) if last.temps_c else None,
        thermal_status=max(statuses) if statuses else None,
        timed_cpus=_cpus(timed_cpus),
    )


def _cpus(cpus: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if cpus is None else tuple(sorted(set(int(c) for c in cpus)))
