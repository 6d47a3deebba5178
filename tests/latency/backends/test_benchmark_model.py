"""benchmark_model: every output form, and both runners against fakes.

The adb runner is driven through the fake ``adb`` of ``mnas.testing.fake_adb``,
which logs its argv and really executes ``adb shell`` strings with ``sh -c``
inside a temporary "device" directory, so quoting mistakes show up as real
breakage (or a real injected file), exactly as they would on a phone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from mnas.latency.backend import make_backend
from mnas.latency.backends.benchmark_model import (
    AdbBenchmarkModelBackend,
    BenchmarkModelOptions,
    LocalBenchmarkModelBackend,
    StatLine,
    parse_benchmark_output,
    parse_stat_line,
)
from mnas.latency.errors import LatencyError
from mnas.latency.result import BackendFingerprint
from mnas.testing.fake_adb import (
    BENCHMARK_OUTPUT,
    FAKE_ADB,
    FAKE_BENCHMARK_MODEL,
    write_executable,
)

FP = BackendFingerprint.create("benchmark_model", "Pixel", "SER1", 1, "v1")

MODERN = BENCHMARK_OUTPUT

UNPREFIXED = """\
STARTING!
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=69 first=9120 curr=7250 min=7100 max=9120 avg=7301.5 std=280

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=7012 curr=6981 min=6950 max=7420 avg=7033.2 std=81

Inference timings in us: Init: 15234, First inference: 9120, Warmup (avg): 7301.5, Inference (avg): 7033.2
"""  # noqa: E501

OLDER = """\
Running benchmark for at least 1 iterations and at least 0.5 seconds
count=3 first=8100 curr=7400 min=7400 max=8100 avg=7700 std=290
Running benchmark for at least 50 iterations and at least 1 seconds
count=50 first=7100 curr=7050 min=6990 max=7600 avg=7120.5 std=95
Average inference timings in us: Warmup: 7700, Init: 16001, Inference: 7120.5
"""

ALL_SAME = """\
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=9000
INFO: Running benchmark for at least 4 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=4 curr=7000(all same)
INFO: Inference timings in us: Init: 100, First inference: 9000, Warmup (avg): 9000, Inference (avg): 7000
"""  # noqa: E501

PROFILING = (
    MODERN
    + """\
INFO: Profiling Info for Benchmark Initialization:
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t ModifyGraphWithDelegate\t    0.357\t    0.357\t 95.450%\t 95.450%\t     0.000\t        1\tModifyGraphWithDelegate/0
\t         AllocateTensors\t    0.017\t    0.009\t  4.550%\t100.000%\t     0.000\t        2\tAllocateTensors/0

Timings (microseconds): count=1 curr=374
Memory (bytes): count=0
2 nodes observed

Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t   TfLiteXNNPackDelegate\t    6.881\t    6.912\t 99.011%\t 99.011%\t     0.000\t        1\t[MobilenetV2/Conv/Relu6]:64
\t                 SOFTMAX\t    0.050\t    0.069\t  0.989%\t100.000%\t     0.000\t        1\t[Predictions]:65
============================== Summary by node type ==============================
\t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
\t   TfLiteXNNPackDelegate\t        1\t    6.912\t    99.011%\t    99.011%\t     0.000\t        1
\t                 SOFTMAX\t        1\t    0.069\t     0.989%\t   100.000%\t     0.000\t        1

Timings (microseconds): count=142 first=6931 curr=6901 min=6890 max=7350 avg=6981 std=70
Memory (bytes): count=0
2 nodes observed
"""  # noqa: E501
)

NO_MARKERS = """\
count=10 first=900 curr=800 min=780 max=900 avg=820 std=30
count=50 first=700 curr=690 min=680 max=750 avg=700.5 std=12.5
"""


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def test_modern_output():
    timings = parse_benchmark_output(MODERN)
    assert timings.inference == StatLine(142, 6981, 7012, 6950, 7420, 7033.2, 81)
    assert timings.warmup is not None and timings.warmup.count == 69
    assert timings.init_us == 15234
    assert timings.first_inference_us == 9120
    assert timings.warmup_avg_us == 7301.5
    assert timings.inference_avg_us == 7033.2
    result = timings.to_result(FP)
    assert result.runs == 142
    assert result.mean_ms == pytest.approx(7.0332)
    assert result.median_ms == pytest.approx(7.0332) and result.median_is_mean
    assert (result.min_ms, result.max_ms) == (6.95, 7.42)
    assert result.std_ms == pytest.approx(0.081)
    assert result.p5_ms is None and result.p95_ms is None
    assert result.init_ms == pytest.approx(15.234)
    assert result.first_run_ms == pytest.approx(9.12)
    assert dict(result.extra)["warmup_avg_ms"] == pytest.approx(7.3015)


def test_unprefixed_output():
    timings = parse_benchmark_output(UNPREFIXED)
    assert timings.inference.count == 50 and timings.inference.avg_us == 7033.2
    assert timings.warmup.count == 69


def test_older_average_summary():
    timings = parse_benchmark_output(OLDER)
    assert timings.inference.count == 50
    assert timings.inference.avg_us == 7120.5
    assert timings.warmup_avg_us == 7700
    assert timings.init_us == 16001
    assert timings.inference_avg_us == 7120.5
    assert timings.first_inference_us is None
    # First run falls back to the warm-up line's first=.
    assert timings.to_result(FP).first_run_ms == pytest.approx(8.1)


def test_all_same_lines():
    timings = parse_benchmark_output(ALL_SAME)
    stat = timings.inference
    assert stat.count == 4
    assert (stat.min_us, stat.max_us, stat.avg_us, stat.std_us) == (7000,) * 3 + (0,)
    assert timings.warmup.count == 1 and timings.warmup.curr_us == 9000
    result = timings.to_result(FP)
    assert (result.median_ms, result.std_ms, result.runs) == (7.0, 0.0, 4)


def test_op_profiling_never_supplies_the_model_latency():
    timings = parse_benchmark_output(PROFILING)
    # Whole-model line, not the profiler's (6981) nor an op row (6.912 ms).
    assert timings.inference.avg_us == 7033.2
    assert [p.count for p in timings.profiling] == [1, 142]
    assert timings.profiling[1].avg_us == 6981
    assert timings.to_result(FP).mean_ms == pytest.approx(7.0332)


def test_lines_without_phase_markers_take_the_last_as_timed():
    timings = parse_benchmark_output(NO_MARKERS)
    assert timings.inference.avg_us == 700.5
    assert timings.warmup.avg_us == 820


def test_stat_line_with_percentiles_gives_a_true_median():
    stat = parse_stat_line(
        "count=50 first=7 curr=7 min=6 max=9 avg=7.2 std=0.5 p5=6.1 median=7.1 p95=8.8"
    )
    assert (stat.median_us, stat.p5_us, stat.p95_us) == (7.1, 6.1, 8.8)
    text = (
        "Running benchmark for at least 1 iterations\ncount=1 curr=9\n"
        "Running benchmark for at least 50 iterations\n"
        "count=50 first=7 curr=7 min=6 max=9 avg=7.2 std=0.5 p5=6.1 median=7.1 p95=8.8"
    )
    result = parse_benchmark_output(text).to_result(FP)
    assert result.median_ms == pytest.approx(0.0071) and not result.median_is_mean
    assert result.p95_ms == pytest.approx(0.0088)


def test_zero_warmup_runs():
    text = (
        "Running benchmark for at least 0 iterations and at least 0 seconds\n"
        "count=0\n"
        "Running benchmark for at least 5 iterations and at least 0 seconds\n"
        "count=5 first=10 curr=11 min=10 max=12 avg=11 std=1\n"
    )
    timings = parse_benchmark_output(text)
    assert timings.warmup is None and timings.inference.count == 5


def test_run_cut_short_after_warmup_is_not_a_result():
    text = (
        "Running benchmark for at least 1 iterations and at least 0.5 seconds\n"
        "count=69 first=9120 curr=7250 min=7100 max=9120 avg=7301.5 std=280\n"
        "Inference timings in us: Init: 15234\n"
    )
    timings = parse_benchmark_output(text)
    assert timings.inference is None and timings.warmup.count == 69
    with pytest.raises(LatencyError, match="no statistics line"):
        timings.to_result(FP)


def test_summary_only_parses_but_gives_no_result():
    timings = parse_benchmark_output(
        "Inference timings in us: Init: 1, First inference: 2, "
        "Warmup (avg): 3, Inference (avg): 4"
    )
    assert timings.inference_avg_us == 4
    with pytest.raises(LatencyError):
        timings.to_result(FP)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello, world\nSegmentation fault\n",
        "ERROR: Could not open '/data/local/tmp/x.tflite'.\n",
        "\tCONV_2D\t0.5\t0.4\t10%\t10%\t0\t1\t[conv]\n",
    ],
)
def test_unparsable_output_raises(text):
    with pytest.raises(LatencyError, match="could not find any timing") as info:
        parse_benchmark_output(text)
    assert info.value.output_tail == text[-2000:]


def test_malformed_stat_line_raises():
    with pytest.raises(LatencyError, match="malformed"):
        parse_benchmark_output("count=5 first=1 min=1\n")


# --------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------

SERIAL = "SER1"
AWKWARD_NAME = """my model's "v2" $(touch INJECTED2); touch INJECTED `x`.tflite"""


class Fakes:
    """Paths and environment of one fake adb + device + binary setup."""

    def __init__(self, root: Path, monkeypatch) -> None:
        self.root = root
        self.device_dir = root / "device dir's tmp"
        self.device_dir.mkdir()
        self.adb = write_executable(root / "adb", FAKE_ADB)
        self.binary = write_executable(root / "benchmark_model", FAKE_BENCHMARK_MODEL)
        self.log = root / "adb.log"
        self.argv_file = root / "bm.argv"
        self.output = root / "bm.out"
        self.output.write_text(MODERN)
        self.model = root / AWKWARD_NAME
        self.model.write_bytes(b"TFL3 fake model")
        for key, value in {
            "FAKE_ADB_LOG": str(self.log),
            "FAKE_DEVICE_DIR": str(self.device_dir),
            "FAKE_DEVICES": f"{SERIAL}\\tdevice",
            "FAKE_BM_ARGV": str(self.argv_file),
            "FAKE_BM_OUTPUT": str(self.output),
        }.items():
            monkeypatch.setenv(key, value)
        for key in ("FAKE_DROP", "FAKE_OLD_ADB", "FAKE_BM_MODE", "FAKE_PUSH_FAIL"):
            monkeypatch.delenv(key, raising=False)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        records = self.log.read_bytes().split(b"\x1e\n")
        return [r.decode().split("\0")[:-1] for r in records if r]

    def binary_argv(self) -> list[str]:
        return self.argv_file.read_bytes().decode().split("\0")[:-1]

    def backend(self, **kwargs) -> AdbBenchmarkModelBackend:
        defaults = dict(
            serial=SERIAL,
            adb_path=str(self.adb),
            remote_dir=str(self.device_dir),
            options=BenchmarkModelOptions(num_runs=50, warmup_runs=10),
        )
        return AdbBenchmarkModelBackend(str(self.binary), **{**defaults, **kwargs})


@pytest.fixture
def fakes(tmp_path, monkeypatch) -> Fakes:
    return Fakes(tmp_path, monkeypatch)


# --------------------------------------------------------------------------
# adb runner
# --------------------------------------------------------------------------


def test_adb_run_pushes_runs_parses_and_cleans_up(fakes):
    backend = fakes.backend(
        taskset_mask="1", options=BenchmarkModelOptions(num_runs=50, warmup_runs=10)
    )
    result = backend.measure(str(fakes.model))
    assert result.mean_ms == pytest.approx(7.0332) and result.runs == 142
    fp = result.fingerprint
    assert (fp.backend, fp.device_model, fp.device_id) == (
        "benchmark_model",
        "Pixel 3",
        SERIAL,
    )
    assert dict(fp.options)["taskset"] == "1"

    calls = fakes.calls()
    assert calls[0] == ["devices"]
    for call in calls[1:]:
        assert call[:2] == ["-s", SERIAL], call
    verbs = [c[2] for c in calls[1:]]
    assert verbs == ["shell", "push", "shell", "push", "shell", "shell"]
    remote_binary = f"{fakes.device_dir}/benchmark_model"
    assert calls[2][3:] == [str(fakes.binary), remote_binary]
    assert calls[3][3].startswith("chmod 755 ")
    pushed_model = calls[4][4]
    assert calls[4][3] == str(fakes.model)
    assert pushed_model.startswith(f"{fakes.device_dir}/mnas-")
    assert pushed_model.endswith(AWKWARD_NAME)

    # The binary saw exactly the intended argv: quoting survived sh -c.
    argv = fakes.binary_argv()
    assert argv == [
        f"--graph={pushed_model}",
        "--num_threads=1",
        "--warmup_runs=10",
        "--num_runs=50",
    ]
    assert calls[5][3].startswith("taskset 1 ")
    # Nothing was injected, the model is gone, the binary stays.
    assert not (fakes.device_dir / "INJECTED").exists()
    assert not (fakes.device_dir / "INJECTED2").exists()
    assert sorted(p.name for p in fakes.device_dir.iterdir()) == ["benchmark_model"]


def test_binary_is_pushed_once_per_backend(fakes):
    backend = fakes.backend()
    backend.measure(str(fakes.model))
    backend.measure(str(fakes.model))
    pushes = [c for c in fakes.calls() if c[2:3] == ["push"]]
    assert [Path(c[3]).name for c in pushes] == [
        "benchmark_model",
        AWKWARD_NAME,
        AWKWARD_NAME,
    ]


def test_no_device_fails_fast_without_touching_anything(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_DEVICES", "")
    start = time.monotonic()
    with pytest.raises(LatencyError) as info:
        fakes.backend().measure(str(fakes.model))
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "no Android device is connected" in message
    assert "adb devices" in message
    assert fakes.calls() == [["devices"]]


def test_unknown_serial_lists_connected_devices(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_DEVICES", "AAA\\tdevice\nBBB\\tunauthorized")
    with pytest.raises(LatencyError) as info:
        fakes.backend(serial="ZZZ").measure(str(fakes.model))
    message = str(info.value)
    assert "'ZZZ' is not connected" in message
    assert "AAA (device)" in message and "BBB (unauthorized)" in message


def test_unauthorized_and_ambiguous_devices(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_DEVICES", "AAA\\tunauthorized")
    with pytest.raises(LatencyError, match="unauthorized"):
        fakes.backend(serial="AAA").measure(str(fakes.model))
    monkeypatch.setenv("FAKE_DEVICES", "AAA\\tdevice\nBBB\\tdevice")
    with pytest.raises(LatencyError, match="several devices"):
        fakes.backend(serial=None).measure(str(fakes.model))
    monkeypatch.setenv("FAKE_DEVICES", "AAA\\tdevice")
    backend = fakes.backend(serial=None)
    assert backend.fingerprint().device_id == "AAA"


def test_device_dropping_mid_run(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_DROP", "1")
    with pytest.raises(LatencyError) as info:
        fakes.backend().measure(str(fakes.model))
    error = info.value
    assert "lost the device" in str(error)
    assert error.command[:4] == [str(fakes.adb), "-s", SERIAL, "shell"]
    assert "--graph=" in error.command[4]
    assert "not found" in error.output_tail
    # Cleanup was still attempted.
    assert fakes.calls()[-1][3].startswith("rm -f ")


def test_failed_model_push_is_reported_and_cleaned_up(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_PUSH_FAIL", "1")
    with pytest.raises(LatencyError, match="adb push failed") as info:
        fakes.backend().measure(str(fakes.model))
    assert "connection reset" in info.value.output_tail
    assert info.value.command[2:4] == [SERIAL, "push"]
    assert sorted(p.name for p in fakes.device_dir.iterdir()) == ["benchmark_model"]


@pytest.mark.parametrize("old_adb", [False, True])
def test_crash_is_reported_even_when_adb_exits_zero(fakes, monkeypatch, old_adb):
    monkeypatch.setenv("FAKE_BM_MODE", "segv")
    if old_adb:
        monkeypatch.setenv("FAKE_OLD_ADB", "1")
    with pytest.raises(LatencyError) as info:
        fakes.backend().measure(str(fakes.model))
    assert "exit code 139" in str(info.value) and "SIGSEGV" in str(info.value)
    assert "STARTING" in info.value.output_tail
    assert list(fakes.device_dir.iterdir()) == [fakes.device_dir / "benchmark_model"]


def test_failing_benchmark_reports_its_error_line(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_BM_MODE", "fail")
    with pytest.raises(LatencyError, match="exit code 1") as info:
        fakes.backend().measure(str(fakes.model))
    assert "Failed to allocate tensors" in info.value.output_tail


def test_timeout_never_hangs(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_BM_MODE", "hang")
    backend = fakes.backend(options=BenchmarkModelOptions(timeout_s=1.0))
    start = time.monotonic()
    with pytest.raises(LatencyError, match="timed out") as info:
        backend.measure(str(fakes.model))
    assert time.monotonic() - start < 20
    assert "STARTING" in info.value.output_tail
    assert "__MNAS_PID__=" in info.value.output_tail


def test_unparsable_output_is_an_error_not_zero(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_BM_MODE", "garbage")
    with pytest.raises(LatencyError, match="could not find any timing") as info:
        fakes.backend().measure(str(fakes.model))
    assert "Hello, world" in info.value.output_tail
    assert info.value.command[3] == "shell"


def test_missing_files_raise(fakes):
    with pytest.raises(LatencyError, match="model file not found"):
        fakes.backend().measure(str(fakes.root / "nope.tflite"))
    with pytest.raises(LatencyError, match="binary"):
        AdbBenchmarkModelBackend(
            str(fakes.root / "missing_bm"),
            serial=SERIAL,
            adb_path=str(fakes.adb),
            remote_dir=str(fakes.device_dir),
        ).measure(str(fakes.model))


def test_remote_command_quotes_every_token(fakes):
    backend = fakes.backend(taskset_mask=0xF0, push_binary=False)
    backend.binary = "/data/local/tmp/bench mark"
    command = backend.remote_command("/data/local/tmp/a b;rm -rf x.tflite")
    assert command.startswith(
        "taskset f0 '/data/local/tmp/bench mark' "
        "'--graph=/data/local/tmp/a b;rm -rf x.tflite' --num_threads=1"
    )
    with pytest.raises(ValueError, match="hex"):
        fakes.backend(taskset_mask="0xZZ")


def test_options_flags_and_validation():
    options = BenchmarkModelOptions(
        num_threads=4,
        warmup_runs=2,
        num_runs=30,
        min_secs=1.5,
        use_xnnpack=True,
        enable_op_profiling=True,
        extra_flags=("--report_peak_memory_footprint=true",),
    )
    assert options.flags("m.tflite") == [
        "--graph=m.tflite",
        "--num_threads=4",
        "--warmup_runs=2",
        "--num_runs=30",
        "--min_secs=1.5",
        "--use_xnnpack=true",
        "--enable_op_profiling=true",
        "--report_peak_memory_footprint=true",
    ]
    with pytest.raises(ValueError):
        BenchmarkModelOptions(num_runs=0)
    with pytest.raises(ValueError):
        BenchmarkModelOptions(num_threads=0)


# --------------------------------------------------------------------------
# Local runner
# --------------------------------------------------------------------------


def test_local_binary(fakes):
    backend = LocalBenchmarkModelBackend(str(fakes.binary), num_runs=5, cpus=[0])
    result = backend.measure(str(fakes.model))
    assert result.mean_ms == pytest.approx(7.0332)
    assert fakes.binary_argv()[0] == f"--graph={fakes.model}"
    assert "--num_runs=5" in fakes.binary_argv()
    assert backend.build_command("m")[:3] == ["taskset", "-c", "0"]
    assert result.fingerprint.runtime_version.startswith("benchmark_model sha256:")


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("segv", "SIGSEGV"),
        ("fail", "exit code 1"),
        ("garbage", "could not find any timing"),
    ],
)
def test_local_failures(fakes, monkeypatch, mode, message):
    monkeypatch.setenv("FAKE_BM_MODE", mode)
    backend = LocalBenchmarkModelBackend(str(fakes.binary))
    with pytest.raises(LatencyError, match=message) as info:
        backend.measure(str(fakes.model))
    assert info.value.command[0] == str(fakes.binary)


def test_local_timeout(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_BM_MODE", "hang")
    backend = LocalBenchmarkModelBackend(str(fakes.binary), timeout_s=1.0)
    start = time.monotonic()
    with pytest.raises(LatencyError, match="timed out"):
        backend.measure(str(fakes.model))
    assert time.monotonic() - start < 20


def test_registry_picks_runner(fakes):
    local = make_backend("benchmark_model", binary=str(fakes.binary))
    assert isinstance(local, LocalBenchmarkModelBackend)
    phone = make_backend(
        "benchmark_model", binary=str(fakes.binary), serial=SERIAL, cpus=[4, 5]
    )
    assert isinstance(phone, AdbBenchmarkModelBackend)
    assert phone.taskset_mask == "30"


# --------------------------------------------------------------------------
# Real adb client
# --------------------------------------------------------------------------

REAL_ADB = shutil.which("adb")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(
    REAL_ADB is None, reason="adb client not installed (apt install adb)"
)
def test_real_adb_without_device_fails_fast(fakes):
    # A private server port: never disturbs (or is disturbed by) another server.
    env = {"ANDROID_ADB_SERVER_PORT": str(_free_port())}
    try:
        listed = subprocess.run(
            [REAL_ADB, "devices"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        if any(line.strip() for line in listed.splitlines()[1:]):
            pytest.skip("a device is attached; the no-device path cannot be tested")
        backend = AdbBenchmarkModelBackend(
            str(fakes.binary), serial=None, adb_path=REAL_ADB, adb_env=env
        )
        start = time.monotonic()
        with pytest.raises(LatencyError) as info:
            backend.measure(str(fakes.model))
        assert time.monotonic() - start < 15
        assert "no Android device is connected" in str(info.value)
        assert "adb devices" in str(info.value)
        serial_backend = AdbBenchmarkModelBackend(
            str(fakes.binary), serial="emulator-5554", adb_path=REAL_ADB, adb_env=env
        )
        with pytest.raises(LatencyError, match="no Android device is connected"):
            serial_backend.fingerprint()
    finally:
        subprocess.run(
            [REAL_ADB, "kill-server"],
            env={**os.environ, **env},
            capture_output=True,
            timeout=30,
        )


def _attached_serials() -> tuple[list[str], str]:
    """Serials `adb devices` lists, and why there are none if so."""
    if REAL_ADB is None:
        return [], "adb client not installed"
    try:
        done = subprocess.run(
            [REAL_ADB, "devices"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"`adb devices` failed: {exc}"
    if "starting now" in done.stderr:
        # We started the server just to look; stop it again.
        subprocess.run([REAL_ADB, "kill-server"], capture_output=True, timeout=30)
    from mnas.latency.backends.adb import parse_adb_devices

    serials = [d.serial for d in parse_adb_devices(done.stdout) if d.usable]
    return serials, "" if serials else "`adb devices` lists no usable device"


@pytest.mark.adb
def test_real_phone_integration(tmp_path):
    serials, why = _attached_serials()
    if not serials:
        pytest.skip(f"no phone: {why}")
    binary = os.environ.get("MNAS_BENCHMARK_MODEL")
    if not binary or not Path(binary).is_file():
        pytest.skip(
            "set MNAS_BENCHMARK_MODEL to an Android benchmark_model binary to run "
            "the phone integration test"
        )
    from mnas.latency.export import export_tflite
    from mnas.testing.latency_models import tiny_convnet

    model = tmp_path / "tiny model.tflite"
    model.write_bytes(export_tflite(tiny_convnet()))
    backend = AdbBenchmarkModelBackend(
        binary,
        serial=serials[0],
        options=BenchmarkModelOptions(num_runs=20, warmup_runs=5, timeout_s=120),
    )
    result = backend.measure(str(model))
    assert result.runs >= 20
    assert 0 < result.min_ms <= result.mean_ms <= result.max_ms
    assert result.fingerprint.device_id == serials[0]
    listing = backend.adb.shell(["ls", backend.remote_dir]).output
    assert "tiny model.tflite" not in listing


def test_fake_adb_scripts_are_valid_bash(tmp_path):
    for text in (FAKE_ADB, FAKE_BENCHMARK_MODEL):
        script = tmp_path / "s.sh"
        script.write_text(textwrap.dedent(text))
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
