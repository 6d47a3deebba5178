"""The official TFLite ``benchmark_model`` binary: output parser and runners.

Two runners share one parser: a local binary, and a binary pushed to an
Android phone over adb (the paper's setup: single thread, big core via
``taskset``, batch 1).  Anything that is not a clean run with parsable
timings raises LatencyError with the command and its output tail: a crash,
a timeout, a device that vanished, output in an unknown form.

For adaptive measurement (:mod:`mnas.latency.measure`) every ``measure``
call is one round in a fresh process.  benchmark_model prints statistics
lines (count, mean, std, min, max), never the time of each run, so a round
contributes its mean (``median_is_mean``), std and run count, and the
estimator draws the within-round noise from that round's standard error.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mnas.latency.backend import LatencyBackend
from mnas.latency.backends.adb import AdbClient
from mnas.latency.backends.affinity import cpu_mask_hex
from mnas.latency.backends.process import describe_returncode, run_command
from mnas.latency.backends.sysinfo import file_digest, host_cpu_model, host_machine
from mnas.latency.errors import LatencyError
from mnas.latency.result import BackendFingerprint, LatencyResult

DEFAULT_REMOTE_DIR = "/data/local/tmp"

# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

# Newer binaries prefix log lines with "INFO: "; logcat-style tags too.
_LOG_PREFIX = re.compile(
    r"^(?:(?:INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG|[IWEVD])\s*:\s*)+"
)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_KEY_VALUE = re.compile(rf"(\w+)=({_NUMBER})")
_ALL_SAME = re.compile(rf"^count=(\d+)\s+curr=({_NUMBER})\s*(?:\(all same\))?\s*$")
_SUMMARY = re.compile(r"^(?:Average\s+)?[Ii]nference timings in us:\s*(?P<body>.*)$")
_SUMMARY_ITEM = re.compile(rf"([A-Za-z][A-Za-z ()]*?)\s*:\s*({_NUMBER})")
_PROFILE = re.compile(r"^Timings \(microseconds\):\s*(?P<stat>count=.*)$")
_RUN_MARKER = re.compile(r"^Running benchmark for at least (\d+) iterations")

# Summary keys (lower case) of both the current and the older one-line form.
_SUMMARY_KEYS = {
    "init": "init_us",
    "first inference": "first_inference_us",
    "warmup (avg)": "warmup_avg_us",
    "warmup": "warmup_avg_us",
    "inference (avg)": "inference_avg_us",
    "inference": "inference_avg_us",
    "no stats": "inference_avg_us",
}


@dataclass(frozen=True)
class StatLine:
    """One ``count=...`` statistics line, in microseconds."""

    count: int
    curr_us: float
    first_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    median_us: float | None = None
    p5_us: float | None = None
    p95_us: float | None = None


@dataclass(frozen=True)
class BenchmarkTimings:
    """Everything benchmark_model printed about time, in microseconds.

    ``inference`` is the whole-model statistics line of the timed runs and
    ``warmup`` that of the warm-up runs.  ``profiling`` is the op
    profiler's own ``Timings (microseconds)`` line: kept for reference but
    never used as the model latency, and per-op table rows are ignored.
    """

    inference: StatLine | None = None
    warmup: StatLine | None = None
    init_us: float | None = None
    first_inference_us: float | None = None
    warmup_avg_us: float | None = None
    inference_avg_us: float | None = None
    profiling: tuple[StatLine, ...] = field(default=())

    def to_result(self, fingerprint: BackendFingerprint) -> LatencyResult:
        """The model latency; raises LatencyError without per-run stats."""
        stat = self.inference
        if stat is None or stat.count < 1:
            raise LatencyError(
                "benchmark_model printed no statistics line for the timed runs "
                "(only averages or nothing), so there is no latency to report"
            )
        mean = stat.avg_us if stat.avg_us is not None else stat.curr_us
        median = stat.median_us if stat.median_us is not None else mean
        first = self.first_inference_us
        if first is None and self.warmup is not None:
            first = self.warmup.first_us or self.warmup.curr_us
        extra = {}
        if self.warmup_avg_us is not None:
            extra["warmup_avg_ms"] = self.warmup_avg_us / 1e3
        return LatencyResult(
            median_ms=median / 1e3,
            mean_ms=mean / 1e3,
            std_ms=(stat.std_us or 0.0) / 1e3,
            min_ms=(stat.min_us if stat.min_us is not None else stat.curr_us) / 1e3,
            max_ms=(stat.max_us if stat.max_us is not None else stat.curr_us) / 1e3,
            p5_ms=None if stat.p5_us is None else stat.p5_us / 1e3,
            p95_ms=None if stat.p95_us is None else stat.p95_us / 1e3,
            runs=stat.count,
            init_ms=None if self.init_us is None else self.init_us / 1e3,
            first_run_ms=None if first is None else first / 1e3,
            fingerprint=fingerprint,
            median_is_mean=stat.median_us is None,
            extra=tuple(extra.items()),
        )


def parse_stat_line(line: str) -> StatLine | None:
    """Parses ``count=...``; None for ``count=0`` (nothing was timed)."""
    line = line.strip()
    same = _ALL_SAME.match(line)
    if same:
        count, value = int(same.group(1)), float(same.group(2))
        if count == 0:
            return None
        return StatLine(count, value, value, value, value, value, 0.0, value)
    values = {k: float(v) for k, v in _KEY_VALUE.findall(line)}
    if "count" not in values:
        raise ValueError(f"not a statistics line: {line!r}")
    count = int(values["count"])
    if count == 0:
        return None
    if "curr" not in values:
        raise ValueError(f"statistics line without curr=: {line!r}")
    return StatLine(
        count=count,
        curr_us=values["curr"],
        first_us=values.get("first"),
        min_us=values.get("min"),
        max_us=values.get("max"),
        avg_us=values.get("avg"),
        std_us=values.get("std"),
        median_us=values.get("median", values.get("p50")),
        p5_us=values.get("p5"),
        p95_us=values.get("p95"),
    )


def parse_benchmark_output(text: str) -> BenchmarkTimings:
    """Parses benchmark_model stdout/stderr of any known version.

    Recognized: ``count=N first=.. curr=.. min=.. max=.. avg=.. std=..``,
    ``count=N curr=X(all same)``, ``Inference timings in us: Init: ..,
    First inference: .., Warmup (avg): .., Inference (avg): ..``, the older
    ``Average inference timings in us: Warmup: .., Init: .., Inference: ..``
    and op-profiling output (``Timings (microseconds): count=..`` plus
    per-op tables).  The warm-up and timed phases are told apart by the
    ``Running benchmark for at least N iterations`` line that opens each;
    without those lines, the last bare ``count=`` line is the timed one.

    Raises:
      LatencyError: no timing information at all, or a malformed line.
    """
    phases: list[list[StatLine | None]] = []
    unmarked: list[StatLine | None] = []
    profiling: list[StatLine] = []
    summary: dict[str, float] = {}
    saw_marker = False
    for raw in text.splitlines():
        line = _LOG_PREFIX.sub("", raw.strip())
        try:
            if _RUN_MARKER.match(line):
                saw_marker = True
                phases.append([])
            elif line.startswith("count="):
                stat = parse_stat_line(line)
                (phases[-1] if phases else unmarked).append(stat)
            elif match := _PROFILE.match(line):
                stat = parse_stat_line(match.group("stat"))
                if stat is not None:
                    profiling.append(stat)
            elif match := _SUMMARY.match(line):
                for key, value in _SUMMARY_ITEM.findall(match.group("body")):
                    name = _SUMMARY_KEYS.get(key.strip().lower())
                    if name is not None:
                        summary[name] = float(value)
        except ValueError as exc:
            raise LatencyError(
                f"malformed benchmark_model line: {exc}", output_tail=text
            ) from exc

    if saw_marker:
        # Each "Running benchmark" line opens a phase: warm-up, then timed.
        firsts = [phase[0] if phase else None for phase in phases]
        if len(firsts) >= 2:
            warmup, inference = firsts[0], firsts[-1]
        else:
            warmup, inference = _single_phase(firsts[0], summary)
    else:
        inference = unmarked[-1] if unmarked else None
        warmup = unmarked[-2] if len(unmarked) >= 2 else None

    timings = BenchmarkTimings(
        inference=inference,
        warmup=warmup,
        profiling=tuple(profiling),
        **summary,
    )
    if timings.inference is None and timings.warmup is None and not summary:
        raise LatencyError(
            "could not find any timing in benchmark_model output "
            "(no count= statistics line, no 'Inference timings in us' summary)",
            output_tail=text,
        )
    return timings


def _single_phase(
    stat: StatLine | None, summary: Mapping[str, float]
) -> tuple[StatLine | None, StatLine | None]:
    """Assigns the only phase's line to (warmup, inference).

    A run that printed one phase was normally cut short after warm-up; it
    counts as the timed phase only if the summary's inference average
    confirms it.
    """
    avg = summary.get("inference_avg_us")
    confirmed = (
        stat is not None
        and stat.avg_us is not None
        and avg is not None
        and abs(stat.avg_us - avg) <= 0.01 * max(abs(avg), 1e-9)
    )
    return (None, stat) if confirmed else (stat, None)


# --------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkModelOptions:
    """benchmark_model flags; None leaves the binary's default in place.

    Defaults follow the paper's setup (one thread) and nn-Meter's profiler
    (``--warmup_runs=10 --num_runs=50``).
    """

    num_threads: int = 1
    warmup_runs: int = 10
    num_runs: int = 50
    warmup_min_secs: float | None = None
    min_secs: float | None = None
    max_secs: float | None = None
    run_delay: float | None = None
    use_xnnpack: bool | None = None
    use_gpu: bool = False
    use_nnapi: bool = False
    enable_op_profiling: bool = False
    extra_flags: tuple[str, ...] = ()
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.num_threads == 0 or self.num_threads < -1:
            raise ValueError("num_threads must be >= 1 (or -1 for the default)")
        if self.num_runs < 1 or self.warmup_runs < 0:
            raise ValueError("need num_runs >= 1 and warmup_runs >= 0")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        object.__setattr__(self, "extra_flags", tuple(self.extra_flags))

    def flags(self, graph: str) -> list[str]:
        """Command-line flags for one model file."""
        out = [
            f"--graph={graph}",
            f"--num_threads={self.num_threads}",
            f"--warmup_runs={self.warmup_runs}",
            f"--num_runs={self.num_runs}",
        ]
        for name in ("warmup_min_secs", "min_secs", "max_secs", "run_delay"):
            value = getattr(self, name)
            if value is not None:
                out.append(f"--{name}={value:g}")
        if self.use_xnnpack is not None:
            out.append(f"--use_xnnpack={_flag_bool(self.use_xnnpack)}")
        if self.use_gpu:
            out.append("--use_gpu=true")
        if self.use_nnapi:
            out.append("--use_nnapi=true")
        if self.enable_op_profiling:
            out.append("--enable_op_profiling=true")
        out.extend(self.extra_flags)
        return out

    def fingerprint_options(self) -> dict[str, object]:
        """The settings that change the latency (not the loop counts)."""
        return {
            "use_xnnpack": self.use_xnnpack,
            "use_gpu": self.use_gpu or None,
            "use_nnapi": self.use_nnapi or None,
            "extra_flags": " ".join(self.extra_flags) or None,
        }


def _flag_bool(value: bool) -> str:
    return "true" if value else "false"


def _options_from(
    options: BenchmarkModelOptions | None, overrides: Mapping[str, object]
) -> BenchmarkModelOptions:
    return replace(options or BenchmarkModelOptions(), **overrides)


def _check_ran(done, command, where: str) -> None:
    if done.returncode != 0:
        raise LatencyError(
            f"benchmark_model failed {where} ({done.describe_exit()})",
            command,
            done.output,
        )


def _parse_or_raise(text: str, command, fingerprint: BackendFingerprint):
    try:
        return parse_benchmark_output(text).to_result(fingerprint)
    except LatencyError as exc:
        raise LatencyError(exc.reason, command, text) from None


# --------------------------------------------------------------------------
# Local runner
# --------------------------------------------------------------------------


class LocalBenchmarkModelBackend(LatencyBackend):
    """Runs a benchmark_model binary on this machine."""

    name = "benchmark_model"

    def __init__(
        self,
        binary: str,
        options: BenchmarkModelOptions | None = None,
        cpus: Iterable[int] | None = None,
        env: Mapping[str, str] | None = None,
        **flag_overrides: object,
    ) -> None:
        self.binary = str(binary)
        self.options = _options_from(options, flag_overrides)
        self.cpus = None if cpus is None else tuple(sorted(set(cpus)))
        self.env = dict(env) if env else None
        self._fingerprint: BackendFingerprint | None = None

    def fingerprint(self) -> BackendFingerprint:
        if self._fingerprint is None:
            try:
                version = f"benchmark_model sha256:{file_digest(self.binary)}"
            except OSError as exc:
                raise LatencyError(
                    f"cannot read benchmark_model binary: {exc}", [self.binary]
                ) from exc
            self._fingerprint = BackendFingerprint.create(
                backend=self.name,
                device_model=host_machine(),
                device_id=host_cpu_model(),
                num_threads=self.options.num_threads,
                runtime_version=version,
                options={**self.options.fingerprint_options(), "cpus": self.cpus},
            )
        return self._fingerprint

    def build_command(self, tflite_path: str) -> list[str]:
        prefix = []
        if self.cpus is not None:
            prefix = ["taskset", "-c", ",".join(str(c) for c in self.cpus)]
        return [*prefix, self.binary, *self.options.flags(str(tflite_path))]

    def measure(self, tflite_path: str) -> LatencyResult:
        fingerprint = self.fingerprint()
        command = self.build_command(tflite_path)
        done = run_command(command, self.options.timeout_s, env=self.env)
        _check_ran(done, command, "locally")
        return _parse_or_raise(done.output, command, fingerprint)


# --------------------------------------------------------------------------
# Android runner
# --------------------------------------------------------------------------

_PID_MARKER = "__MNAS_PID__="
_EXIT_MARKER = "__MNAS_EXIT__="
_PID_RE = re.compile(re.escape(_PID_MARKER) + r"(\d+)")
_EXIT_RE = re.compile(re.escape(_EXIT_MARKER) + r"(\d+)")
_CLEANUP_TIMEOUT_S = 15.0


class AdbBenchmarkModelBackend(LatencyBackend):
    """Runs benchmark_model on an Android phone over adb.

    The binary is pushed (once per backend) and made executable; each model
    is pushed under a unique name, timed, and deleted again.  The remote
    command reports its own exit status, so an old adb that always exits 0
    still cannot turn a crash into a silent success.
    """

    name = "benchmark_model"

    def __init__(
        self,
        binary: str,
        serial: str | None = None,
        adb_path: str = "adb",
        options: BenchmarkModelOptions | None = None,
        taskset_mask: str | int | None = None,
        remote_dir: str = DEFAULT_REMOTE_DIR,
        push_binary: bool = True,
        binary_version: str | None = None,
        keep_model: bool = False,
        adb_env: Mapping[str, str] | None = None,
        adb_timeout_s: float = 60.0,
        **flag_overrides: object,
    ) -> None:
        self.binary = str(binary)
        self.options = _options_from(options, flag_overrides)
        self.taskset_mask = _normalize_mask(taskset_mask)
        self.remote_dir = remote_dir.rstrip("/") or "/"
        self.push_binary = push_binary
        self.keep_model = keep_model
        self.adb = AdbClient(serial, adb_path, timeout_s=adb_timeout_s, env=adb_env)
        self._binary_version = binary_version
        self._fingerprint: BackendFingerprint | None = None
        self._binary_ready = False

    @property
    def remote_binary(self) -> str:
        if not self.push_binary:
            return self.binary
        return f"{self.remote_dir}/{os.path.basename(self.binary)}"

    def fingerprint(self) -> BackendFingerprint:
        if self._fingerprint is None:
            serial = self.adb.serial  # fails fast when no device is there
            model = self.adb.getprop("ro.product.model") or "unknown"
            self._fingerprint = BackendFingerprint.create(
                backend=self.name,
                device_model=model,
                device_id=serial,
                num_threads=self.options.num_threads,
                runtime_version=self._version(),
                options={
                    **self.options.fingerprint_options(),
                    "taskset": self.taskset_mask,
                },
            )
        return self._fingerprint

    def _version(self) -> str:
        if self._binary_version:
            return self._binary_version
        if self.push_binary:
            try:
                return f"benchmark_model sha256:{file_digest(self.binary)}"
            except OSError as exc:
                raise LatencyError(
                    f"cannot read benchmark_model binary: {exc}", [self.binary]
                ) from exc
        return f"benchmark_model at {self.binary}"

    def prepare(self) -> None:
        """Pushes the binary and makes it executable (once)."""
        if self._binary_ready:
            return
        if self.push_binary:
            if not Path(self.binary).is_file():
                raise LatencyError(
                    f"benchmark_model binary not found: {self.binary}", [self.binary]
                )
            self.adb.push(self.binary, self.remote_binary)
        self.adb.shell(["chmod", "755", self.remote_binary])
        self._binary_ready = True

    def remote_command(self, remote_model: str) -> str:
        """The one string the device's shell runs (every token quoted).

        The binary runs in the background so its pid can be reported (and
        killed on timeout); its exit status is echoed after ``wait``.
        """
        tokens = []
        if self.taskset_mask is not None:
            tokens += ["taskset", self.taskset_mask]
        tokens += [self.remote_binary, *self.options.flags(remote_model)]
        return (
            f"{shlex.join(tokens)} & pid=$!; echo {_PID_MARKER}$pid; "
            f"wait $pid; echo {_EXIT_MARKER}$?"
        )

    def measure(self, tflite_path: str) -> LatencyResult:
        fingerprint = self.fingerprint()
        self.prepare()
        local = str(tflite_path)
        if not Path(local).is_file():
            raise LatencyError(f"model file not found: {local}", [local])
        name = f"mnas-{uuid.uuid4().hex[:8]}-{os.path.basename(local)}"
        remote_model = f"{self.remote_dir}/{name}"
        try:
            # Inside the try: a push cut short can leave a partial file.
            self.adb.push(local, remote_model)
            return self._run(remote_model, fingerprint)
        finally:
            if not self.keep_model:
                self._cleanup(remote_model)

    def _run(self, remote_model: str, fingerprint: BackendFingerprint):
        remote = self.remote_command(remote_model)
        command = self.adb.command("shell", remote)
        try:
            done = self.adb.run("shell", remote, timeout_s=self.options.timeout_s)
        except LatencyError as exc:
            self._kill_remote(exc.output_tail)
            raise
        text = done.output
        exits = _EXIT_RE.findall(text)
        if not exits:
            raise LatencyError(
                "lost the device during the run: the remote command never "
                f"reported its exit status (adb {describe_returncode(done.returncode)}"
                "); check the cable and `adb devices`",
                command,
                text,
            )
        status = int(exits[-1])
        if status != 0:
            raise LatencyError(
                f"benchmark_model failed on the device ({describe_returncode(status)})",
                command,
                text,
            )
        if done.returncode != 0:
            raise LatencyError(
                f"adb shell failed ({done.describe_exit()})", command, text
            )
        return _parse_or_raise(text, command, fingerprint)

    def _kill_remote(self, partial_output: str) -> None:
        """Best effort: stop the benchmark left running by a timeout."""
        pids = _PID_RE.findall(partial_output or "")
        if not pids:
            return
        with contextlib.suppress(LatencyError):
            self.adb.run("shell", f"kill {int(pids[-1])}", timeout_s=_CLEANUP_TIMEOUT_S)

    def _cleanup(self, remote_model: str) -> None:
        """Deletes the pushed model; never masks the measurement's own error."""
        with contextlib.suppress(LatencyError):
            self.adb.run(
                "shell",
                shlex.join(["rm", "-f", remote_model]),
                timeout_s=_CLEANUP_TIMEOUT_S,
            )


def _normalize_mask(mask: str | int | None) -> str | None:
    if mask is None:
        return None
    if isinstance(mask, int):
        return format(mask, "x")
    text = mask.strip().lower().removeprefix("0x")
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"taskset mask must be hex, got {mask!r}")
    return text


def make_benchmark_model_backend(
    binary: str,
    serial: str | None = None,
    android: bool | None = None,
    cpus: Sequence[int] | None = None,
    **kwargs: object,
) -> LatencyBackend:
    """Registry factory: adb when a serial is given or ``android=True``.

    ``cpus`` becomes a taskset mask on a phone and a CPU list locally.
    """
    on_phone = android if android is not None else serial is not None
    if on_phone:
        if cpus is not None and kwargs.get("taskset_mask") is None:
            kwargs["taskset_mask"] = cpu_mask_hex(cpus)
        return AdbBenchmarkModelBackend(binary, serial=serial, **kwargs)
    return LocalBenchmarkModelBackend(binary, cpus=cpus, **kwargs)
