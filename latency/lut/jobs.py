"""The lookup-table modes of mnas-latency: --build_lut, --predict, --evaluate_predictor.

Library code: the binary turns its flags into a frozen ``LutJob``; this
module never reads FLAGS. Errors (LatencyError, LookupTableError) propagate
to the caller, which reports them.
"""

from __future__ import annotations

import dataclasses
import os
import time

from mnas.io.atomic import write_json_atomic
from mnas.io.progress import Progress, format_duration
from mnas.io.tables import format_table
from mnas.latency.config import (
    LatencyConfig,
    entry_timing,
    load_predictor,
    model_timing,
    open_lookup_table,
)
from mnas.search_space import ArchSpec

LUT_MODES = ("build_lut", "predict", "evaluate_predictor")


@dataclasses.dataclass(frozen=True)
class LutJob:
    mode: str  # build_lut | predict | evaluate_predictor
    lut_path: str
    space_name: str
    spec: ArchSpec | None = None
    calibration_archs: int = 8
    lut_rounds: int = 2
    num_archs: int = 100
    rounds: int = 3
    seed: int = 0
    output_dir: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in LUT_MODES:
            raise ValueError(f"lookup-table mode must be one of {LUT_MODES}")
        if self.mode == "predict" and self.spec is None:
            raise ValueError("--predict needs --arch=<preset | strings | json>")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["spec"] = None if self.spec is None else self.spec.to_dict()
        return data


def _progress_printer(label: str, every: int = 1):
    state: dict[str, Progress] = {}

    def progress(done: int, total: int, message: str) -> None:
        bar = state.get("bar")
        if bar is None or bar.total != max(total, 1) or done < bar.done:
            bar = state["bar"] = Progress(total)
        if done % every == 0 or done == total:
            bar.update(done, f"{label}: {message}")

    return progress


def run_lut_job(job: LutJob, config: LatencyConfig) -> int:
    """Runs one table mode; returns the exit status."""
    from mnas.search_space import get_search_space

    space = get_search_space(job.space_name)
    if job.mode == "build_lut":
        return _build(job, config, space)
    predictor = load_predictor(config, job.lut_path, space)
    if job.mode == "predict":
        return _predict(job, predictor)
    return _evaluate(job, config, predictor, space)


def _raw_backend(config: LatencyConfig):
    from mnas.latency.backend import make_backend

    return make_backend(config.backend, **config.backend_options())


def _build(job: LutJob, config: LatencyConfig, space) -> int:
    from mnas.latency.lut.builder import build_space_table, open_or_create
    from mnas.latency.lut.calibration import calibrate, sample_specs
    from mnas.latency.lut.predictor import LatencyPredictor, describe_calibration

    path = job.lut_path
    if os.path.isdir(path) or (os.path.exists(path) and os.path.getsize(path)):
        open_lookup_table(path)  # a clear error for a file that is no table
    backend = _raw_backend(config)
    table = open_or_create(path, backend, space)
    print(f"lookup table {job.lut_path}: {len(table)} entries present")
    print(f"backend: {backend.describe()}")
    timing = entry_timing(config)
    try:
        report = build_space_table(
            table,
            space,
            backend,
            _progress_printer("entry", 50),
            job.lut_rounds,
            timing,
        )
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what was measured is kept
        print(
            f"\nstopped: {len(table)} entries are in {job.lut_path}; "
            "--build_lut again measures only the missing ones",
            flush=True,
        )
        raise
    print(
        f"{report.total_entries} entries for search space {space.identity()}: "
        f"{report.already_present} were present, {report.measured} measurements "
        f"({job.lut_rounds} per entry) in "
        f"{format_duration(report.seconds)}"
    )
    if timing is not None:
        print(
            f"adaptive entries (±{timing.settings.target:.0%}, "
            f"{timing.settings.min_rounds}-{timing.settings.max_rounds} interleaved "
            f"rounds): {report.remeasured} re-measurements of entries flagged "
            f"unstable; {report.unstable} entries still unstable (kept, flagged)"
        )
    if job.calibration_archs > 0:
        predictor = LatencyPredictor(table, backend, timing=timing)
        specs = sample_specs(space, job.calibration_archs, job.seed + 1000)
        start = time.monotonic()
        calibration = calibrate(
            predictor,
            specs,
            backend,
            job.rounds,
            _progress_printer("calibration"),
            model_timing(config),
        )
        print(
            f"calibration ({format_duration(time.monotonic() - start)}): "
            f"{describe_calibration(calibration)}"
        )
        unstable = calibration.report.get("unstable_models")
        if unstable:
            print(
                f"calibration models still unstable after re-measuring "
                f"(used flagged): {', '.join(unstable)}"
            )
    return 0


def _predict(job: LutJob, predictor) -> int:
    from mnas.latency.lut.predictor import describe_calibration

    spec = job.spec
    assert spec is not None  # checked by LutJob
    rows = [(key, f"{ms:.4f}") for key, ms in predictor.breakdown(spec)]
    raw = predictor.raw_ms(spec)
    print(format_table(("entry", "ms"), rows))
    print(f"sum of entries: {raw:.3f} ms")
    print(f"calibration: {describe_calibration(predictor.calibration)}")
    print(f"predicted latency of {spec.name}: {predictor.predict(spec):.3f} ms")
    if job.output_dir:
        _write(
            job,
            {"arch": spec.name, "raw_ms": raw, "predicted_ms": predictor.predict(spec)},
        )
    return 0


def _evaluate(job: LutJob, config: LatencyConfig, predictor, space) -> int:
    from mnas.latency.lut.calibration import evaluate_predictor, sample_specs

    specs = sample_specs(space, job.num_archs, job.seed)
    measuring = _raw_backend(config)
    timing = model_timing(config)
    start = time.monotonic()
    evaluation = evaluate_predictor(
        predictor,
        specs,
        measuring,
        job.rounds,
        _progress_printer("whole models"),
        timing=timing,
    )
    print(format_table(evaluation.HEADERS, evaluation.table_rows()))
    if timing is None:
        how = f"{job.rounds} interleaved rounds"
    else:
        stable = sum(bool(v) for v in evaluation.measured_stable)
        how = (
            f"each measured twice, independently, in adaptive interleaved rounds "
            f"(±{timing.settings.target:.0%} or {timing.settings.max_seconds:g} s "
            f"per model; {stable} of {len(specs)} first measurements stable); "
            "'inside interval': inside the first measurement's "
            f"{timing.settings.confidence:.0%} interval; the second measurement "
            "is the noise ceiling"
        )
    print(
        f"{len(specs)} architectures (seed {job.seed}), {how}, "
        f"{format_duration(time.monotonic() - start)}; prediction "
        f"{1e3 * evaluation.predict_seconds_per_arch:.3f} ms per architecture (CPU)"
    )
    if job.output_dir:
        _write(job, evaluation.to_dict())
    return 0


def _write(job: LutJob, result: dict) -> None:
    for name, data in (("config.json", job.to_dict()), ("predictor.json", result)):
        write_json_atomic(os.path.join(job.output_dir, name), data)
