"""Flags that pick and configure a latency backend, and what is timed.

The backend flags become a frozen ``mnas.latency.LatencyConfig``; library
code works from that.
"""

from __future__ import annotations

import os

from absl import flags

from mnas.flags.common import FLAGS, FlagError, check_range, defines
from mnas.latency import (
    BACKENDS,
    DEFAULT_CACHE_PATH,
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
    )


def backend_from_flags(flag_values: flags.FlagValues) -> LatencyBackend:
    """The backend the flags describe, cached unless the cache is off."""
    return backend_from_config(latency_config_from_flags(flag_values))
