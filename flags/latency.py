"""Flags that pick and configure a latency backend, and what is timed.

The backend flags become a frozen ``mnas.latency.LatencyConfig``; library
code works from that.
"""

from __future__ import annotations

import dataclasses
import os

from absl import flags

from mnas.flags.common import FLAGS, FlagError, check_range, defines
from mnas.latency import (
    BACKENDS,
    DEFAULT_CACHE_PATH,
    DEFAULT_MAX_MEASURE_S,
    DEFAULT_PRECISION,
    SEARCH_MEASUREMENT,
    LatencyBackend,
    LatencyConfig,
    backend_from_config,
    parse_cpu_list,
)
from mnas.search_space import MAX_RESOLUTION

#: Bounds of --deployment_resolution (the search's latency is measured
#: there): at least 32 (the space downsamples 32-fold), at most ArchSpec's.
MIN_DEPLOYMENT_RESOLUTION = 32
MAX_DEPLOYMENT_RESOLUTION = MAX_RESOLUTION


@defines("latency_backend")
def define_latency_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The backend flags (mnas-latency, mnas-search, mnas-scale)."""
    flags.DEFINE_enum(
        "latency_backend",
        "host",
        list(BACKENDS),
        "How to time a .tflite file: 'host' (in-process LiteRT interpreter, "
        "XNNPACK), 'litert-benchmark' (the official Python tool, as a "
        "subprocess) or 'benchmark_model' (the official C++ binary, local or "
        "on a phone over adb).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_threads",
        1,
        "Runtime threads (the paper used 1).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_runs",
        None,
        "Timed runs per measurement; default: the backend's own (50).",
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "serial",
        [],
        "adb serial(s) of the phone(s) for --latency_backend=benchmark_model; "
        "several serials form a device pool. Implies --android.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "benchmark_model",
        None,
        "Path of the benchmark_model binary (an Android build with --android).",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "android",
        False,
        "Run benchmark_model on a phone over adb (the default device when no "
        "--serial is given).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "taskset_mask",
        None,
        "Hex CPU affinity mask for benchmark_model on a phone, e.g. f0 for the "
        "big cores of many 4+4 SoCs (device specific).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "cpus",
        None,
        "Host CPUs to pin timing to, taskset style ('0', '2-3', '0,2'); on a "
        "phone it becomes the taskset mask.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "latency_cache",
        DEFAULT_CACHE_PATH,
        "sqlite file caching results by model SHA-256 and backend fingerprint; "
        "empty string: no cache at all.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "no_latency_cache",
        False,
        "Bypass the cache: always measure afresh (the new result still replaces "
        "the cached one).",
        flag_values=flag_values,
    )
    define_adaptive_flags(flag_values)


@defines("latency_adaptive")
def define_adaptive_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """How precisely a latency is measured (docs/latency_uncertainty.md)."""
    search = SEARCH_MEASUREMENT
    flags.DEFINE_bool(
        "latency_adaptive",
        True,
        "Time in interleaved rounds (a fresh interpreter or process each) until "
        "the interval is within --latency_precision or --latency_max_seconds "
        "passed; every result carries its interval and a stable flag, and "
        "unstable ones are re-measured. --nolatency_adaptive: one plain round.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "latency_precision",
        None,
        "Target relative half-width of the latency interval; default "
        f"{DEFAULT_PRECISION:g} (±{DEFAULT_PRECISION:.0%}) in mnas-latency and "
        f"mnas-scale, {search['target_precision']:g} in mnas-search.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "latency_max_seconds",
        None,
        "Time cap of one model's adaptive measurement (a model that misses the "
        f"precision by then is flagged unstable); default {DEFAULT_MAX_MEASURE_S:g} "
        f"s in mnas-latency and mnas-scale, {search['max_measure_s']:g} s per "
        "candidate in mnas-search.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "latency_confidence",
        0.95,
        "Confidence level of the latency interval.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "latency_min_rounds",
        5,
        "Rounds before an adaptive measurement may stop.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "latency_max_rounds",
        40,
        "Rounds after which an adaptive measurement stops regardless.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "latency_remeasures",
        1,
        "How often a search, --build_lut or a calibration measures a result "
        "flagged unstable again, later, before using it flagged.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "latency_reference",
        None,
        "Preset timed interleaved with every model (e.g. mobilenet-v2), so "
        "results also read as a ratio to it; mnas-search --target_ratio uses "
        "mobilenet-v2 when this is unset.",
        flag_values=flag_values,
    )


@defines("deployment_resolution")
def define_deployment_resolution_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    """Where a search times its candidates (mnas-search, mnas-dnas)."""
    flags.DEFINE_integer(
        "deployment_resolution",
        224,
        "Resolution at which a candidate is exported and its latency measured, "
        f"in [{MIN_DEPLOYMENT_RESOLUTION}, {MAX_DEPLOYMENT_RESOLUTION}].",
        flag_values=flag_values,
    )


@defines("tflite")
def define_measure_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """What mnas-latency times, and how often."""
    flags.DEFINE_string(
        "tflite",
        None,
        "Measure this .tflite file as it is, instead of building --arch.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "repeats",
        1,
        "Measure the file this many times (afresh, not from the cache) and print "
        "the spread of the medians: the coefficient of variation across repeats.",
        flag_values=flag_values,
    )


def deployment_resolution_from_flags(flag_values: flags.FlagValues) -> int:
    value = flag_values.deployment_resolution
    check_range(
        "deployment_resolution",
        value,
        MIN_DEPLOYMENT_RESOLUTION,
        MAX_DEPLOYMENT_RESOLUTION,
    )
    return value


def latency_config_from_flags(flag_values: flags.FlagValues) -> LatencyConfig:
    """Reads the flags of :func:`define_latency_flags`; ValueError if bad."""
    cpus = None
    if flag_values.cpus:
        try:
            cpus = parse_cpu_list(flag_values.cpus)
        except ValueError:
            raise FlagError(
                f"--cpus must be a CPU list such as '0' or '0,2-3', got "
                f"{flag_values.cpus!r}"
            ) from None
    cache = flag_values.latency_cache
    precision = flag_values.latency_precision
    max_seconds = flag_values.latency_max_seconds
    return LatencyConfig(
        backend=flag_values.latency_backend,
        num_threads=flag_values.num_threads,
        num_runs=flag_values.num_runs,
        serials=tuple(s.strip() for s in flag_values.serial),
        benchmark_model=flag_values.benchmark_model,
        android=flag_values.android,
        taskset_mask=flag_values.taskset_mask,
        cpus=cpus,
        cache_path=os.path.expanduser(cache) if cache else None,
        bypass_cache=flag_values.no_latency_cache,
        adaptive=flag_values.latency_adaptive,
        target_precision=DEFAULT_PRECISION if precision is None else precision,
        confidence=flag_values.latency_confidence,
        min_rounds=flag_values.latency_min_rounds,
        max_rounds=flag_values.latency_max_rounds,
        max_measure_s=DEFAULT_MAX_MEASURE_S if max_seconds is None else max_seconds,
        remeasures=flag_values.latency_remeasures,
        reference=flag_values.latency_reference or None,
    )


def for_search(
    flag_values: flags.FlagValues,
    config: LatencyConfig,
    resolution: int,
    ratio: bool = False,
) -> LatencyConfig:
    """``config`` as a search measures: ``SEARCH_MEASUREMENT``'s precision
    and time cap where their flags were not given, the reference at the
    deployment ``resolution``; with ``ratio`` (a reward on the ratio) the
    reference defaults to MobileNetV2 1.0 and the ratio's interval must meet
    the precision too."""
    changes: dict = {"reference_resolution": resolution}
    for flag, field in (
        ("latency_precision", "target_precision"),
        ("latency_max_seconds", "max_measure_s"),
    ):
        if flag not in flag_values or flag_values[flag].value is None:
            changes[field] = SEARCH_MEASUREMENT[field]
    if ratio:
        if not config.adaptive:
            raise FlagError(
                "--target_ratio needs adaptive latency (the reference is timed in "
                "the same rounds as each candidate); drop --nolatency_adaptive"
            )
        changes["reference"] = config.reference or "mobilenet-v2"
        changes["ratio_precision"] = changes.get(
            "target_precision", config.target_precision
        )
    return dataclasses.replace(config, **changes)


def backend_from_flags(flag_values: flags.FlagValues) -> LatencyBackend:
    """The backend the flags describe, cached unless the cache is off."""
    return backend_from_config(latency_config_from_flags(flag_values))
