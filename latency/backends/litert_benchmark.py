"""The official ``litert-benchmark`` tool (shipped in ai-edge-litert).

Running the vendor's own tool as a subprocess gives an independent check
on the in-process host figure: same runtime, different code path
(``CompiledModel`` rather than ``Interpreter``) and a fresh process.  Its
JSON rounds every time to 0.01 ms, so sub-0.1 ms toys lose precision.

For adaptive measurement (:mod:`mnas.latency.measure`) every ``measure``
call is one round in a fresh process.  The tool keeps its per-run times to
itself (``--result_json`` holds only median, mean, std, percentiles and
the run count; checked in ai-edge-litert 2.3.0), so a round contributes its
median, std and run count, and the estimator draws that round's
within-round noise from its standard error instead of resampling runs.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mnas.latency.backend import LatencyBackend
from mnas.latency.backends.process import run_command
from mnas.latency.backends.sysinfo import host_cpu_model, host_machine, litert_version
from mnas.latency.errors import LatencyError
from mnas.latency.result import BackendFingerprint, LatencyResult

_MODULE = "ai_edge_litert.tools.benchmark_litert_model"


def default_command() -> list[str]:
    """The ``litert-benchmark`` script next to this interpreter, or ``-m``."""
    beside = Path(sys.executable).with_name("litert-benchmark")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("litert-benchmark")
    if found:
        return [found]
    return [sys.executable, "-m", _MODULE]


class LiteRTBenchmarkBackend(LatencyBackend):
    """Runs ``litert-benchmark --result_json`` and reads the JSON."""

    name = "litert-benchmark"

    def __init__(
        self,
        num_threads: int = 1,
        warmup_runs: int = 5,
        num_runs: int = 50,
        cpus: Iterable[int] | None = None,
        timeout_s: float = 600.0,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if num_threads < 1 or num_runs < 1 or warmup_runs < 0:
            raise ValueError("need num_threads >= 1, num_runs >= 1, warmup_runs >= 0")
        self.num_threads = num_threads
        self.warmup_runs = warmup_runs
        self.num_runs = num_runs
        self.cpus = None if cpus is None else tuple(sorted(set(cpus)))
        self.timeout_s = timeout_s
        self.base_command = list(command) if command else default_command()
        self.env = dict(env) if env else None

    def fingerprint(self) -> BackendFingerprint:
        return BackendFingerprint.create(
            backend=self.name,
            device_model=host_machine(),
            device_id=host_cpu_model(),
            num_threads=self.num_threads,
            runtime_version=litert_version(),
            options={"accelerator": "cpu", "cpus": self.cpus},
        )

    def build_command(self, tflite_path: str, result_json: str) -> list[str]:
        """The argv (no shell involved, so any file name is safe)."""
        prefix = []
        if self.cpus is not None:
            prefix = ["taskset", "-c", ",".join(str(c) for c in self.cpus)]
        return [
            *prefix,
            *self.base_command,
            f"--model={tflite_path}",
            f"--num_threads={self.num_threads}",
            f"--warmup_runs={self.warmup_runs}",
            f"--num_runs={self.num_runs}",
            f"--result_json={result_json}",
        ]

    def measure(self, tflite_path: str) -> LatencyResult:
        with tempfile.TemporaryDirectory(prefix="mnas-litert-") as tmp:
            json_path = str(Path(tmp) / "result.json")
            command = self.build_command(str(tflite_path), json_path)
            done = run_command(command, self.timeout_s, env=self.env)
            if done.returncode != 0:
                raise LatencyError(
                    f"litert-benchmark failed ({done.describe_exit()})",
                    command,
                    done.output,
                )
            try:
                text = Path(json_path).read_text()
            except OSError:
                raise LatencyError(
                    "litert-benchmark exited 0 but wrote no --result_json file",
                    command,
                    done.output,
                ) from None
        try:
            return parse_result_json(json.loads(text), self.fingerprint())
        except (ValueError, KeyError, TypeError) as exc:
            raise LatencyError(
                f"cannot read litert-benchmark JSON: {exc}", command, text
            ) from exc


def parse_result_json(
    data: Mapping[str, Any], fingerprint: BackendFingerprint
) -> LatencyResult:
    """Maps the tool's ``--result_json`` document onto a LatencyResult."""
    latency = data["latency"]
    runs = int(latency["num_runs"])
    if runs < 1:
        raise ValueError("result has no timed runs")
    extra = {}
    if "warmup_avg_ms" in latency:
        extra["warmup_avg_ms"] = float(latency["warmup_avg_ms"])
    return LatencyResult(
        median_ms=float(latency["median_ms"]),
        mean_ms=float(latency["avg_ms"]),
        std_ms=float(latency["std_ms"]),
        min_ms=float(latency["min_ms"]),
        max_ms=float(latency["max_ms"]),
        p5_ms=float(latency["p5_ms"]),
        p95_ms=float(latency["p95_ms"]),
        runs=runs,
        init_ms=_optional_float(latency.get("init_ms")),
        # The tool reports 0 for "first" when it ran no warm-up at all.
        first_run_ms=(
            _optional_float(latency.get("warmup_first_ms"))
            if int(latency.get("num_warmup_runs", 1)) > 0
            else None
        ),
        fingerprint=fingerprint,
        extra=tuple(extra.items()),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
