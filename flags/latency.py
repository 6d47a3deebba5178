"""Flags that pick and configure a latency backend, shared by every binary.

Only binaries (``mnas/bin/*``) import this module. The flags become a frozen
``mnas.latency.config.LatencyConfig``; library code works from that.
"""

from __future__ import annotations

import os

from absl import flags

from mnas.latency.backend import LatencyBackend
from mnas.latency.backends.affinity import parse_cpu_list
from mnas.latency.config import (
    BACKENDS,
    DEFAULT_CACHE_PATH,
    DEFAULT_LUT_PATH,
    LatencyConfig,
    backend_from_config,
)


def define_latency_flags(default_backend: str = "host") -> None:
    """Defines the backend flags on the global absl FlagValues."""
    flags.DEFINE_enum(
        "latency_backend",
        default_backend,
        list(BACKENDS),
        "How to time a .tflite file: 'host' (in-process LiteRT interpreter, "
        "XNNPACK), 'litert-benchmark' (the official Python tool, as a "
        "subprocess) or 'benchmark_model' (the official C++ binary, local or "
        "on a phone over adb).",
    )
    flags.DEFINE_integer("num_threads", 1, "Runtime threads (the paper used 1).")
    flags.DEFINE_integer(
        "num_runs",
        None,
        "Timed runs per measurement; default: the backend's own (50).",
    )
    flags.DEFINE_list(
        "serial",
        [],
        "adb serial(s) of the phone(s) for --latency_backend=benchmark_model; "
        "several serials form a device pool. Implies --android.",
    )
    flags.DEFINE_string(
        "benchmark_model",
        None,
        "Path of the benchmark_model binary (an Android build with --android).",
    )
    flags.DEFINE_bool(
        "android",
        False,
        "Run benchmark_model on a phone over adb (the default device when no "
        "--serial is given).",
    )
    flags.DEFINE_string(
        "taskset_mask",
        None,
        "Hex CPU affinity mask for benchmark_model on a phone, e.g. f0 for the "
        "big cores of many 4+4 SoCs (device specific).",
    )
    flags.DEFINE_string(
        "cpus",
        None,
        "Host CPUs to pin timing to, taskset style ('0', '2-3', '0,2'); on a "
        "phone it becomes the taskset mask.",
    )
    flags.DEFINE_string(
        "latency_cache",
        DEFAULT_CACHE_PATH,
        "sqlite file caching results by model SHA-256 and backend fingerprint; "
        "empty string: no cache at all.",
    )
    flags.DEFINE_bool(
        "no_latency_cache",
        False,
        "Bypass the cache: always measure afresh (the new result still replaces "
        "the cached one).",
    )


def define_lut_flags() -> None:
    """The lookup-table file (shared by mnas-latency, mnas-search, mnas-dnas)."""
    flags.DEFINE_string(
        "lut",
        DEFAULT_LUT_PATH,
        "Latency lookup-table file (JSON lines, built by `mnas-latency "
        "--build_lut`); {backend} and {space} are replaced by the latency "
        "backend and search-space names.",
    )


def lut_path_from_flags(flag_values: flags.FlagValues, space_name: str) -> str:
    path = flag_values.lut.format(backend=flag_values.latency_backend, space=space_name)
    return os.path.expanduser(path)


def latency_config_from_flags(flag_values: flags.FlagValues) -> LatencyConfig:
    """Reads the flags of :func:`define_latency_flags`; ValueError if bad."""
    cpus = None
    if flag_values.cpus:
        try:
            cpus = parse_cpu_list(flag_values.cpus)
        except ValueError:
            raise ValueError(
                f"--cpus must be a CPU list such as '0' or '0,2-3', got "
                f"{flag_values.cpus!r}"
            ) from None
    mask = flag_values.taskset_mask
    if mask is not None:
        text = mask.strip().lower().removeprefix("0x")
        if not text or any(c not in "0123456789abcdef" for c in text):
            raise ValueError(f"--taskset_mask must be hex (e.g. f0), got {mask!r}")
    cache = flag_values.latency_cache
    return LatencyConfig(
        backend=flag_values.latency_backend,
        num_threads=flag_values.num_threads,
        num_runs=flag_values.num_runs,
        serials=tuple(s.strip() for s in flag_values.serial),
        benchmark_model=flag_values.benchmark_model,
        android=flag_values.android,
        taskset_mask=mask,
        cpus=cpus,
        cache_path=os.path.expanduser(cache) if cache else None,
        bypass_cache=flag_values.no_latency_cache,
    )


def quiet_tensorflow(flag_values: flags.FlagValues) -> None:
    """Keeps TensorFlow's and the converter's INFO chatter out of the output.

    Call before TensorFlow is imported; an explicit --verbosity wins.
    """
    import logging as std_logging

    from absl import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not flag_values["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)


def backend_from_flags(flag_values: flags.FlagValues) -> LatencyBackend:
    """The backend the flags describe, cached unless the cache is off."""
    return backend_from_config(latency_config_from_flags(flag_values))
