"""mnas-latency: time an architecture (or a .tflite file) on a latency backend.

Examples::

  mnas-latency --arch=mnasnet-a1
  mnas-latency --arch=mnasnet-a1 --quantize=int8 --cpus=1 --num_runs=100
  mnas-latency --tflite=model.tflite --latency_backend=litert-benchmark
  mnas-latency --arch=best.json --latency_backend=benchmark_model \\
      --benchmark_model=./benchmark_model --serial=R58M123,R58M456

Lookup-table predictor (per-layer latencies of one backend and search space)::

  mnas-latency --build_lut                 # measure every entry, then calibrate
  mnas-latency --predict --arch=mnasnet-a1 # per-layer breakdown and total
  mnas-latency --evaluate_predictor --num_archs=100  # measured vs predicted

Given an architecture it builds the Keras model (batch 1, 224x224 unless
--resolution says otherwise), exports it with the chosen quantization and
measures the file; given --tflite it measures that file as it is.  With
several --serial devices the file is measured once on each.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

from absl import app, flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.latency import (
    define_latency_flags,
    define_lut_flags,
    latency_config_from_flags,
    lut_path_from_flags,
    quiet_tensorflow,
)
from mnas.latency.config import LatencyConfig, backends_from_config
from mnas.search_space import ArchSpec, SpecError

QUANTIZE_CHOICES = ("none", "dynamic", "int8")

define_arch_flags(default_arch=None)
define_latency_flags()
flags.DEFINE_string(
    "tflite", None, "Measure this .tflite file instead of building --arch."
)
flags.DEFINE_enum(
    "quantize",
    "none",
    list(QUANTIZE_CHOICES),
    "Export quantization for --arch: none (float32), dynamic (int8 weights) "
    "or int8 (full-integer, random-normal calibration).",
)
flags.DEFINE_integer(
    "repeats",
    1,
    "Measure the file this many times (afresh, not from the cache) and print "
    "the spread of the medians: the coefficient of variation across repeats.",
)
flags.DEFINE_string(
    "output_dir",
    None,
    "If set, write the exported model, latency.json and config.json here.",
)
define_lut_flags()
flags.DEFINE_bool(
    "build_lut",
    False,
    "Build (or resume) the lookup table of --search_space on the backend: "
    "every distinct layer, then a calibration on --calibration_archs models.",
)
flags.DEFINE_bool(
    "predict",
    False,
    "Predict --arch's latency from the lookup table (per-layer breakdown).",
)
flags.DEFINE_bool(
    "evaluate_predictor",
    False,
    "Sample --num_archs architectures, measure them whole and compare with "
    "the predictor and a multiply-adds baseline.",
)
flags.DEFINE_string("search_space", "mnasnet", "Search space of the table.")
flags.DEFINE_integer(
    "calibration_archs",
    8,
    "Whole models (sampled with --seed + 1000) the table's calibration is fitted "
    "on after --build_lut; 0 skips calibration.",
)
flags.DEFINE_integer(
    "lut_rounds",
    2,
    "--build_lut measures every entry this many times, in full passes minutes "
    "apart, and keeps each entry's fastest median (robust to bursts of load).",
)
flags.DEFINE_integer("num_archs", 100, "Architectures for --evaluate_predictor.")
flags.DEFINE_integer(
    "rounds",
    3,
    "Interleaved timing rounds for whole models (median of round medians).",
)
flags.DEFINE_integer("seed", 0, "Seed for sampling architectures.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = latency_config_from_flags(FLAGS)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    modes = [
        m for m in ("build_lut", "predict", "evaluate_predictor") if FLAGS[m].value
    ]
    if len(modes) > 1:
        raise app.UsageError(f"give one of --{', --'.join(modes)}, not several")
    if modes:
        return _lut_mode(modes[0], config)
    if FLAGS.repeats < 1:
        raise app.UsageError(f"--repeats must be >= 1, got {FLAGS.repeats}")
    spec = _spec_or_none()
    output_dir = FLAGS.output_dir
    if output_dir and os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise app.UsageError(f"--output_dir is not a folder: {output_dir}")
    quiet_tensorflow(FLAGS)
    try:
        backends = backends_from_config(config)
    except ValueError as error:
        raise app.UsageError(str(error)) from None

    with tempfile.TemporaryDirectory(prefix="mnas-latency-") as scratch:
        if spec is not None:
            folder = FLAGS.output_dir or scratch
            tflite_path, export_s = _export(spec, folder)
            print(
                f"exported {spec.name} at {spec.resolution}x{spec.resolution}, "
                f"quantization {FLAGS.quantize}: {os.path.getsize(tflite_path):,} "
                f"bytes in {export_s:.1f} s"
            )
        else:
            tflite_path = FLAGS.tflite
        rows, results = _measure(backends, tflite_path, FLAGS.repeats)
        if rows is None:
            return 1
        print(_report(tflite_path, spec, results, rows))
        if FLAGS.output_dir:
            _write_outputs(FLAGS.output_dir, config, spec, tflite_path, results)
    return 0


def _lut_mode(mode: str, config: LatencyConfig) -> int:
    from mnas.latency.lut.jobs import LutJob, run_job

    if FLAGS.tflite:
        raise app.UsageError(f"--{mode} works on architectures, not on --tflite")
    spec = None
    if mode == "predict":
        if not FLAGS.arch:
            raise app.UsageError("--predict needs --arch=<preset | strings | json>")
        try:
            spec = arch_from_flags(FLAGS)
        except SpecError as error:
            raise app.UsageError(str(error)) from None
    for name in ("num_archs", "rounds", "lut_rounds"):
        if FLAGS[name].value < 1:
            raise app.UsageError(f"--{name} must be >= 1, got {FLAGS[name].value}")
    if FLAGS.calibration_archs < 0:
        raise app.UsageError("--calibration_archs must be >= 0")
    quiet_tensorflow(FLAGS)
    job = LutJob(
        mode=mode,
        lut_path=lut_path_from_flags(FLAGS, FLAGS.search_space),
        space_name=FLAGS.search_space,
        spec=spec,
        calibration_archs=FLAGS.calibration_archs,
        lut_rounds=FLAGS.lut_rounds,
        num_archs=FLAGS.num_archs,
        rounds=FLAGS.rounds,
        seed=FLAGS.seed,
        output_dir=FLAGS.output_dir,
    )
    return run_job(job, config)


def _spec_or_none() -> ArchSpec | None:
    """The architecture to build, or None with --tflite; UsageError if bad."""
    if FLAGS.tflite and FLAGS.arch:
        raise app.UsageError("give either --arch or --tflite, not both")
    if FLAGS.tflite:
        if not os.path.isfile(FLAGS.tflite):
            raise app.UsageError(f"--tflite file not found: {FLAGS.tflite}")
        if FLAGS["quantize"].present and FLAGS.quantize != "none":
            raise app.UsageError(
                "--quantize applies to --arch; a --tflite file is measured as it is"
            )
        for name in ("resolution", "width_multiplier", "depth_multiplier"):
            if FLAGS[name].present:
                raise app.UsageError(f"--{name} applies to --arch, not to --tflite")
        return None
    if not FLAGS.arch:
        raise app.UsageError(
            "give --arch=<preset | block strings | arch.json> or --tflite=PATH"
        )
    try:
        return arch_from_flags(FLAGS)
    except SpecError as error:
        raise app.UsageError(str(error)) from None


def _export(spec: ArchSpec, folder: str) -> tuple[str, float]:
    from mnas.latency.export import export_tflite
    from mnas.model.builder import build_model

    start = time.perf_counter()
    model = build_model(
        spec, (spec.resolution, spec.resolution, 3), num_classes=FLAGS.num_classes
    )
    data = export_tflite(model, quantization=FLAGS.quantize)
    os.makedirs(folder, exist_ok=True)
    suffix = {"none": "float"}.get(FLAGS.quantize, FLAGS.quantize)
    path = os.path.join(folder, f"{_file_stem(spec.name)}_{suffix}.tflite")
    with open(path, "wb") as handle:
        handle.write(data)
    return path, time.perf_counter() - start


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def _measure(backends, tflite_path: str, repeats: int):
    """Rows of the result table, or (None, None) after printing an error."""
    from mnas.latency.cache import CachedBackend
    from mnas.latency.errors import LatencyError

    rows, results = [], []
    for device, backend in enumerate(backends):
        # Repeats are about run-to-run spread, so they all measure afresh.
        target = backend
        if repeats > 1 and isinstance(backend, CachedBackend):
            target = backend.backend
        for repeat in range(repeats):
            hits = getattr(target, "hits", None)
            try:
                result = target.measure(tflite_path)
            except LatencyError as error:
                print(f"mnas-latency: measurement failed: {error}", file=sys.stderr)
                return None, None
            except ValueError as error:  # e.g. pinning to CPUs we do not have
                raise app.UsageError(str(error)) from None
            if isinstance(target, CachedBackend):
                cache = "hit" if target.hits != hits else "miss"
                if target.bypass:
                    cache = "bypassed"
            else:
                cache = "fresh" if repeats > 1 else "off"
            results.append(result)
            rows.append(_row(device, repeat, result, cache))
    return rows, results


def _row(device: int, repeat: int, result, cache: str) -> tuple:
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


def _report(tflite_path: str, spec: ArchSpec | None, results, rows) -> str:
    from mnas.io.tables import format_table
    from mnas.latency.cache import sha256_file

    headers = (
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
    lines = [
        f"model: {tflite_path}  ({os.path.getsize(tflite_path):,} bytes, "
        f"sha256 {sha256_file(tflite_path)[:16]})",
    ]
    if spec is not None:
        lines.append(
            f"architecture: {spec.name}  resolution: {spec.resolution}  "
            f"quantization: {FLAGS.quantize}  batch: 1"
        )
    lines += ["", format_table(headers, rows), ""]
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
    if len(results) > 1 and FLAGS.repeats > 1:
        medians = [r.median_ms for r in results]
        mean = statistics.fmean(medians)
        cv = statistics.stdev(medians) / mean if mean > 0 else 0.0
        lines.append(
            f"medians over {len(medians)} measurements: mean {mean:.3f} ms, "
            f"min {min(medians):.3f}, max {max(medians):.3f}, CV {cv:.1%}"
        )
    return "\n".join(lines)


def _write_outputs(
    folder: str,
    config: LatencyConfig,
    spec: ArchSpec | None,
    tflite_path: str,
    results,
) -> None:
    os.makedirs(folder, exist_ok=True)
    run_config = {
        "binary": "mnas-latency",
        "latency": config.to_dict(),
        "arch": None if spec is None else spec.to_dict(),
        "tflite": os.path.abspath(tflite_path),
        "quantize": FLAGS.quantize if spec is not None else None,
        "num_classes": FLAGS.num_classes if spec is not None else None,
        "repeats": FLAGS.repeats,
    }
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(run_config, handle, indent=2, sort_keys=True)
        handle.write("\n")
    with open(os.path.join(folder, "latency.json"), "w", encoding="utf-8") as handle:
        json.dump([r.to_dict() for r in results], handle, indent=2, sort_keys=True)
        handle.write("\n")


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
