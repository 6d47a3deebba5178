"""Flags that pick and configure a latency backend, shared by every binary.

Only binaries (``mnas/bin/*``) import this module.  The flags are turned
into a frozen :class:`LatencyConfig` first; everything after that (building
backends, the cache, a device pool) works from the config, so a binary can
write the config into ``config.json`` and a later run can rebuild the same
backend from it without any flags.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from absl import flags

from mnas.latency.affinity import parse_cpu_list
from mnas.latency.backend import LatencyBackend, backend_names, make_backend

DEFAULT_CACHE_PATH = "~/.cache/mnas/latency.sqlite"
#: Default lookup-table file; ``{backend}`` and ``{space}`` are filled in.
DEFAULT_LUT_PATH = "~/.cache/mnas/lut/{backend}-{space}.lut.jsonl"
BACKENDS = ("host", "litert-benchmark", "benchmark_model")


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


def load_predictor(
    config: LatencyConfig, lut_path: str, space, measure_missing: bool = True
):
    """The table at ``lut_path`` as a predictor for ``config``'s backend.

    Refuses a table measured on another backend or built for another space
    (LookupTableError naming both). With ``measure_missing`` an entry the
    table lacks is measured on the backend and added to the file.
    """
    from mnas.latency.lut import LookupTable
    from mnas.latency.predictor import LatencyPredictor

    backend = make_backend(config.backend, **config.backend_options())
    table = LookupTable.load(lut_path)
    table.check_compatible(backend.fingerprint(), space.identity())
    return LatencyPredictor(table, backend if measure_missing else None)


@dataclass(frozen=True)
class LatencyConfig:
    """Everything needed to rebuild a latency backend; JSON-safe.

    Attributes:
      backend: registry name (``host``, ``litert-benchmark``,
        ``benchmark_model``).
      num_threads: runtime threads.
      num_runs: timed runs, or None for the backend's default.
      serials: adb serials; more than one forms a device pool.
      benchmark_model: benchmark_model binary path.
      android: run benchmark_model on a phone over adb.
      taskset_mask: hex affinity mask on the phone.
      cpus: host CPUs to pin to (or phone CPUs, turned into a mask).
      cache_path: sqlite cache file, or None for no cache.
      bypass_cache: measure afresh even when the cache has the result.
    """

    backend: str = "host"
    num_threads: int = 1
    num_runs: int | None = None
    serials: tuple[str, ...] = ()
    benchmark_model: str | None = None
    android: bool = False
    taskset_mask: str | None = None
    cpus: tuple[int, ...] | None = None
    cache_path: str | None = None
    bypass_cache: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "serials", tuple(self.serials))
        if self.cpus is not None:
            object.__setattr__(self, "cpus", tuple(sorted(set(self.cpus))))
        if self.backend not in backend_names():
            raise ValueError(
                f"unknown latency backend {self.backend!r}; choose one of "
                f"{', '.join(backend_names())}"
            )
        if self.num_threads < 1:
            raise ValueError(f"--num_threads must be >= 1, got {self.num_threads}")
        if self.num_runs is not None and self.num_runs < 1:
            raise ValueError(f"--num_runs must be >= 1, got {self.num_runs}")
        if any(not s.strip() for s in self.serials):
            raise ValueError("--serial holds an empty serial")
        if len(set(self.serials)) != len(self.serials):
            raise ValueError(f"--serial lists a device twice: {','.join(self.serials)}")
        if self.backend == "benchmark_model":
            if not self.benchmark_model:
                raise ValueError(
                    "--latency_backend=benchmark_model needs --benchmark_model="
                    "PATH (the binary; an Android build with --android/--serial)"
                )
            if self.taskset_mask is not None and not self.on_phone:
                raise ValueError(
                    "--taskset_mask applies on a phone (--android or --serial); "
                    "pin a local benchmark_model with --cpus"
                )
        else:
            for name, value in (
                ("--serial", self.serials),
                ("--android", self.android),
                ("--benchmark_model", self.benchmark_model),
                ("--taskset_mask", self.taskset_mask),
            ):
                if value:
                    raise ValueError(
                        f"{name} needs --latency_backend=benchmark_model "
                        f"(got --latency_backend={self.backend})"
                    )

    @property
    def on_phone(self) -> bool:
        return self.backend == "benchmark_model" and (
            self.android or bool(self.serials)
        )

    def backend_options(self, serial: str | None = None) -> dict[str, Any]:
        """Keyword arguments of ``make_backend(self.backend, ...)``.

        ``serial`` picks one device of the pool (default: the first serial,
        or adb's default device when none is listed).
        """
        options: dict[str, Any] = {"num_threads": self.num_threads}
        if self.num_runs is not None:
            options["num_runs"] = self.num_runs
        if self.cpus is not None:
            options["cpus"] = list(self.cpus)
        if self.backend == "benchmark_model":
            options["binary"] = self.benchmark_model
            if self.on_phone:
                options["android"] = True
                chosen = (
                    serial if serial is not None else next(iter(self.serials), None)
                )
                if chosen is not None:
                    options["serial"] = chosen
                if self.taskset_mask is not None:
                    options["taskset_mask"] = self.taskset_mask
            else:
                options["android"] = False
        return options

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for ``config.json``."""
        data = dataclasses.asdict(self)
        data["serials"] = list(self.serials)
        data["cpus"] = None if self.cpus is None else list(self.cpus)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown latency config fields: {', '.join(unknown)}")
        values = dict(data)
        values["serials"] = tuple(values.get("serials") or ())
        if values.get("cpus") is not None:
            values["cpus"] = tuple(values["cpus"])
        return cls(**values)


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


def open_cache(config: LatencyConfig):
    """The configured :class:`~mnas.latency.cache.LatencyCache`, or None."""
    if not config.cache_path:
        return None
    from mnas.latency.cache import LatencyCache

    return LatencyCache(config.cache_path)


def backends_from_config(config: LatencyConfig) -> list[LatencyBackend]:
    """One backend per device (one per serial; a single one otherwise).

    Each is wrapped in a ``CachedBackend`` sharing one cache file unless the
    config has no cache; with ``bypass_cache`` they measure afresh.
    """
    from mnas.latency.cache import CachedBackend

    devices: list[str | None] = list(config.serials) or [None]
    cache = open_cache(config)
    backends: list[LatencyBackend] = []
    for serial in devices:
        backend = make_backend(config.backend, **config.backend_options(serial))
        if cache is not None:
            backend = CachedBackend(backend, cache, bypass=config.bypass_cache)
        backends.append(backend)
    return backends


def backend_from_config(config: LatencyConfig) -> LatencyBackend:
    """The single backend of a one-device config (see :func:`pool_from_config`)."""
    if len(config.serials) > 1:
        raise ValueError(
            f"--serial lists {len(config.serials)} devices; a single backend "
            "measures on one (use a device pool)"
        )
    return backends_from_config(config)[0]


def pool_from_config(config: LatencyConfig):
    """A :class:`~mnas.latency.pool.DevicePool` with one backend per device."""
    from mnas.latency.pool import DevicePool

    return DevicePool(backends_from_config(config))


def backend_from_flags(flag_values: flags.FlagValues) -> LatencyBackend:
    """The backend the flags describe, cached unless the cache is off."""
    return backend_from_config(latency_config_from_flags(flag_values))
