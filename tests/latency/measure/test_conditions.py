"""Conditions: /proc and /sys parsing, local and adb readers, JSON form."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mnas.latency.backends.process import CommandOutput
from mnas.latency.measure.conditions import (
    AdbReader,
    Conditions,
    CpuTimes,
    LocalReader,
    Snapshot,
    parse_loadavg,
    parse_proc_stat,
    parse_thermal_status,
    steal_share,
    summarize_snapshots,
    take_snapshot,
)

PROC_STAT = """\
cpu  1000 10 200 5000 50 5 15 40 0 0
cpu0 600 10 100 2000 25 5 10 20 0 0
cpu1 400 0 100 3000 25 0 5 20 0 0
intr 1135322 0 0
ctxt 123
"""


def write_tree(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def host_tree(root: Path, cpufreq: bool = False, thermal: bool = False) -> None:
    files = {"/proc/stat": PROC_STAT, "/proc/loadavg": "0.85 0.70 0.50 2/172 15047\n"}
    if cpufreq:
        files["/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"] = "2400000\n"
        files["/sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq"] = "1800000\n"
    if thermal:
        files["/sys/class/thermal/thermal_zone0/type"] = "cpu-big\n"
        files["/sys/class/thermal/thermal_zone0/temp"] = "48500\n"
        files["/sys/class/thermal/thermal_zone1/type"] = "battery\n"
        files["/sys/class/thermal/thermal_zone1/temp"] = "31\n"  # degrees already
    write_tree(root, files)


def test_parse_proc_stat_splits_busy_idle_and_steal():
    total, cpus = parse_proc_stat(PROC_STAT)
    # busy = user + nice + system + irq + softirq; idle = idle + iowait.
    assert total == CpuTimes(busy=1230, idle=5050, steal=40)
    assert cpus == {0: CpuTimes(725, 2025, 20), 1: CpuTimes(505, 3025, 20)}
    assert total.total == 6320
    assert cpus[0] - cpus[1] == CpuTimes(220, -1000, 0)
    # Old kernels print fewer columns (no steal).
    old_total, _ = parse_proc_stat("cpu  1 2 3 4\n")
    assert old_total == CpuTimes(6, 4, 0)


def test_parse_loadavg_and_thermal_status():
    assert parse_loadavg("0.85 0.70 0.50 2/172 15047\n") == 0.85
    assert parse_loadavg("") is None
    text = "IsStatusOverride: false\nThermal Status: 3\nCached temperatures:\n"
    assert parse_thermal_status(text) == 3
    assert parse_thermal_status("Can't find service: thermalservice") is None


def test_vm_without_cpufreq_or_thermal_says_unavailable(tmp_path):
    host_tree(tmp_path)
    snap = take_snapshot(LocalReader(str(tmp_path)), clock=lambda: 5.0)
    assert snap.time == 5.0 and snap.load == 0.85
    assert snap.freqs_mhz == {} and snap.temps_c == {}
    conditions = summarize_snapshots([snap], "host", None)
    assert conditions.cpu_freq_mhz is None and conditions.temp_c is None
    assert conditions.describe() == "load 0.8, freq unavailable"


def test_cpufreq_and_thermal_zones_are_read(tmp_path):
    host_tree(tmp_path, cpufreq=True, thermal=True)
    snap = take_snapshot(LocalReader(str(tmp_path)), clock=lambda: 0.0)
    assert snap.freqs_mhz == {0: 2400.0, 1: 1800.0}
    assert snap.temps_c == {"cpu-big": 48.5, "battery": 31.0}
    conditions = summarize_snapshots([snap, snap], "host", [0])
    assert conditions.cpu_freq_mhz == (1800.0, 2400.0)
    assert conditions.temp_c == 48.5
    assert conditions.timed_cpus == (0,)
    assert conditions.describe() == "load 0.8, freq 1800-2400 MHz, 48 C"


def test_steal_share_between_snapshots():
    first = Snapshot(0.0, total=CpuTimes(100, 800, 100))
    last = Snapshot(1.0, total=CpuTimes(200, 1580, 120))
    # 20 stolen ticks of 900 elapsed.
    assert steal_share(first, last) == pytest.approx(20 / 900)
    assert steal_share(first, Snapshot(1.0)) is None
    conditions = summarize_snapshots([first, last], "host", None)
    assert conditions.steal == pytest.approx(20 / 900)


def test_conditions_json_round_trip_is_exact():
    conditions = Conditions(
        where="adb:R58M",
        load_avg=3.5,
        steal=0.0125,
        cpu_freq_mhz=(1800.0, 2400.0),
        temp_c=41.0,
        thermal_status=2,
        timed_cpus=(4, 5),
        busy_others=((1, 0.9),),
        interference=("CPU 1 busy with another process in 2 of 5 rounds (up to 90%)",),
    )
    data = json.loads(json.dumps(conditions.to_dict()))
    assert Conditions.from_dict(data) == conditions
    assert Conditions.from_dict({}) == Conditions()
    assert conditions.describe() == (
        "load 3.5, steal 1.2%, freq 1800-2400 MHz, 41 C, thermal moderate"
    )


class ShellAdb:
    """Fake adb client: runs ``adb shell`` strings with ``sh -c`` locally."""

    def __init__(self, path_dir: Path | None = None, fail: bool = False) -> None:
        self.requested_serial = "SER1"
        self.env = dict(os.environ)
        if path_dir is not None:
            self.env["PATH"] = f"{path_dir}:{self.env['PATH']}"
        self.fail = fail
        self.scripts: list[str] = []

    def run(self, *args: str, timeout_s: float | None = None) -> CommandOutput:
        assert args[0] == "shell" and len(args) == 2
        self.scripts.append(args[1])
        if self.fail:
            return CommandOutput(("adb",) + args, 1, "error: device 'SER1' not found")
        done = subprocess.run(
            ["sh", "-c", args[1]],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=10,
        )
        return CommandOutput(
            ("adb",) + args, done.returncode, done.stdout + done.stderr
        )


def test_adb_reader_reads_a_phone_tree_in_one_shell_call(tmp_path):
    phone = tmp_path / "phone"
    host_tree(phone, cpufreq=True, thermal=True)
    client = ShellAdb()
    reader = AdbReader(client, root=str(phone))
    assert reader.where == "adb:SER1"
    snap = take_snapshot(reader, clock=lambda: 0.0)
    assert len(client.scripts) == 1
    assert snap.cpus[1] == CpuTimes(505, 3025, 20)
    assert snap.load == 0.85
    assert snap.freqs_mhz == {0: 2400.0, 1: 1800.0}
    assert snap.temps_c == {"cpu-big": 48.5, "battery": 31.0}


def test_adb_reader_thermal_status_from_dumpsys(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dumpsys = bin_dir / "dumpsys"
    dumpsys.write_text(
        '#!/bin/sh\n[ "$1" = thermalservice ] || exit 1\n'
        'echo "IsStatusOverride: false"\necho "Thermal Status: 4"\n'
    )
    dumpsys.chmod(0o755)
    phone = tmp_path / "phone"
    host_tree(phone)
    reader = AdbReader(ShellAdb(bin_dir), root=str(phone))
    assert reader.thermal_status() == 4
    snap = take_snapshot(reader, clock=lambda: 0.0, thermal_status=True)
    assert snap.thermal_status == 4
    assert summarize_snapshots([snap], reader.where, None).thermal_status == 4


def test_adb_reader_survives_a_vanished_device():
    reader = AdbReader(ShellAdb(fail=True))
    snap = take_snapshot(reader, clock=lambda: 0.0, thermal_status=True)
    assert snap.total is None and snap.load is None and snap.thermal_status is None


def test_adb_reader_refuses_patterns_a_shell_would_misread():
    with pytest.raises(ValueError, match="unsafe path pattern for a remote shell"):
        AdbReader(ShellAdb()).script(["/proc/stat; rm -rf /"])
