"""mnas-latency's measuring mode: export an architecture (or take a
``.tflite`` file), time it on every backend, print and write the results.

The binary turns its flags into a frozen :class:`MeasureJob`; this module
never reads FLAGS.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
from collections.abc import Sequence

from mnas.io.atomic import write_json_atomic
from mnas.io.tables import format_table
from mnas.latency.backend import LatencyBackend
from mnas.latency.cache import CachedBackend, sha256_file
from mnas.latency.config import LatencyConfig
from mnas.latency.export import export_to_file, tflite_file_name
from mnas.latency.result import LatencyResult
from mnas.search_space import ArchSpec

HEADERS = (
    "device",
    "repeat",
    "median ms",
    "mean",
    "std",
    "min",
    "max",
    "p5",
    "p95",
    "runs",
    "init ms",
    "first run ms",
    "cache",
)


@dataclasses.dataclass(frozen=True)
class MeasureJob:
    """What to time: ``spec`` (exported here) or ``tflite`` (as it is)."""

    spec: ArchSpec | None = None
    tflite: str | None = None
    quantization: str = "none"
    num_classes: int = 1000
    repeats: int = 1
    output_dir: str | None = None

    def __post_init__(self) -> None:
        if (self.spec is None) == (self.tflite is None):
            raise ValueError("a measure job times either an architecture or a file")
        if self.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {self.repeats}")

    def latency_config(self, config: LatencyConfig) -> LatencyConfig:
        """``config`` with its reference (if any) at this job's resolution:
        the architecture's, or the input side of the given file."""
        if config.reference is None:
            return config
        if self.spec is not None:
            resolution = self.spec.resolution
        else:
            resolution = tflite_input_resolution(self.tflite)
        if resolution is None:
            return config
        return dataclasses.replace(config, reference_resolution=resolution)

    def to_dict(self, config: LatencyConfig, tflite_path: str) -> dict:
        """``config.json`` of the run."""
        built = self.spec is not None
        return {
            "binary": "mnas-latency",
            "latency": config.to_dict(),
            "arch": self.spec.to_dict() if built else None,
            "tflite": os.path.abspath(tflite_path),
            "quantize": self.quantization if built else None,
            "num_classes": self.num_classes if built else None,
            "repeats": self.repeats,
        }


def tflite_input_resolution(path: str | None) -> int | None:
    """The height of a ``.tflite`` file's first (image) input, or None when
    the file cannot be read here or has no NHWC input."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        shape = Interpreter(model_path=str(path)).get_input_details()[0]["shape"]
    except (ImportError, ValueError, RuntimeError, OSError, IndexError):
        return None
    return int(shape[1]) if len(shape) == 4 else None


def run_measure_job(
    job: MeasureJob, config: LatencyConfig, backends: Sequence[LatencyBackend]
) -> int:
    """Exports (if needed), measures on each backend, prints the table and
    writes ``latency.json`` and ``config.json`` to ``job.output_dir``.
    LatencyError and ValueError (e.g. CPUs this host lacks) propagate."""
    with tempfile.TemporaryDirectory(prefix="mnas-latency-") as scratch:
        path = job.tflite
        if job.spec is not None:
            spec = job.spec
            exported = export_to_file(
                spec,
                os.path.join(
                    job.output_dir or scratch,
                    tflite_file_name(spec.name, job.quantization),
                ),
                quantization=job.quantization,
                num_classes=job.num_classes,
            )
            path = exported.path
            print(
                f"exported {spec.name} at {spec.resolution}x{spec.resolution}, "
                f"quantization {job.quantization}: {exported.size_bytes:,} "
                f"bytes in {exported.seconds:.1f} s",
                flush=True,
            )
        assert path is not None
        rows, results = measure(backends, path, job.repeats)
        print(report(job, path, results, rows))
        if job.output_dir:
            write_json_atomic(
                os.path.join(job.output_dir, "config.json"), job.to_dict(config, path)
            )
            write_json_atomic(
                os.path.join(job.output_dir, "latency.json"),
                [r.to_dict() for r in results],
            )
    return 0


def measure(
    backends: Sequence[LatencyBackend], tflite_path: str, repeats: int
) -> tuple[list[tuple], list[LatencyResult]]:
    """Table rows and results: ``repeats`` measurements on each backend.

    Repeats are about run-to-run spread, so with more than one every
    measurement bypasses the cache.
    """
    rows, results = [], []
    for device, backend in enumerate(backends):
        target = backend
        if repeats > 1 and isinstance(backend, CachedBackend):
            target = backend.backend
        for repeat in range(repeats):
            hits = getattr(target, "hits", None)
            stale = getattr(target, "remeasured", None)
            result = target.measure(tflite_path)
            if isinstance(target, CachedBackend):
                cache = "hit" if target.hits != hits else "miss"
                if target.remeasured != stale:
                    cache = "re-measured"  # the cached result was unstable
                if target.bypass:
                    cache = "bypassed"
            else:
                cache = "fresh" if repeats > 1 else "off"
            results.append(result)
            rows.append(_row(device, repeat, result, cache))
    return rows, results


def _row(device: int, repeat: int, result: LatencyResult, cache: str) -> tuple:
    def ms(value):
        return "-" if value is None else round(value, 3)

    fp = result.fingerprint
    median = ms(result.median_ms)
    if result.median_is_mean:
        median = f"{result.median_ms:.3f} (mean)"
    return (
        fp.device_id if fp.backend == "benchmark_model" else f"#{device}",
        repeat + 1,
        median,
        ms(result.mean_ms),
        ms(result.std_ms),
        ms(result.min_ms),
        ms(result.max_ms),
        ms(result.p5_ms),
        ms(result.p95_ms),
        result.runs,
        ms(result.init_ms),
        ms(result.first_run_ms),
        cache,
    )


def report(
    job: MeasureJob, tflite_path: str, results: Sequence[LatencyResult], rows
) -> str:
    """The model line, the table, each distinct fingerprint, and the spread
    of the medians when the file was measured repeatedly."""
    lines = [
        f"model: {tflite_path}  ({os.path.getsize(tflite_path):,} bytes, "
        f"sha256 {sha256_file(tflite_path)[:16]})",
    ]
    if job.spec is not None:
        lines.append(
            f"architecture: {job.spec.name}  resolution: {job.spec.resolution}  "
            f"quantization: {job.quantization}  batch: 1"
        )
    lines += ["", format_table(HEADERS, rows), ""]
    seen = []
    for result in results:
        fp = result.fingerprint
        if fp in seen:
            continue
        seen.append(fp)
        options = " ".join(f"{k}={v}" for k, v in fp.options) or "-"
        lines.append(
            f"fingerprint: backend={fp.backend} device_model={fp.device_model} "
            f"device_id={fp.device_id} threads={fp.num_threads} "
            f"runtime={fp.runtime_version} options: {options}"
        )
    for row, result in zip(rows, results):
        lines.append(f"latency {row[0]} repeat {row[1]}: {result.summary()}")
    if len(results) > 1 and job.repeats > 1:
        medians = [r.median_ms for r in results]
        mean = statistics.fmean(medians)
        cv = statistics.stdev(medians) / mean if mean > 0 else 0.0
        lines.append(
            f"medians over {len(medians)} measurements: mean {mean:.3f} ms, "
            f"min {min(medians):.3f}, max {max(medians):.3f}, CV {cv:.1%}"
        )
    return "\n".join(lines)
