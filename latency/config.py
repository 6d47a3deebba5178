"""Latency configuration as a frozen value, and the backends it builds.

A binary turns its flags into a ``LatencyConfig`` (``mnas.flags.latency``);
everything after that (backends, the cache, a device pool, the lookup-table
predictor) works from the config, so ``config.json`` can rebuild the same
backend later without any flags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mnas.latency.backend import LatencyBackend, backend_names, make_backend
from mnas.search_space import check_bool, check_int, check_text, shown, shown_names

DEFAULT_CACHE_PATH = "~/.cache/mnas/latency.sqlite"
#: Default lookup-table file; ``{backend}`` and ``{space}`` are filled in.
DEFAULT_LUT_PATH = "~/.cache/mnas/lut/{backend}-{space}.lut.jsonl"
BACKENDS = ("host", "litert-benchmark", "benchmark_model")

# Bounds of LatencyConfig's fields.
MAX_THREADS = 256
MAX_RUNS = 100_000
MAX_DEVICES = 256
MAX_CPU = 4095  # as mnas.latency.backends.affinity.MAX_CPU
MAX_TEXT_LENGTH = 4096


class LatencyConfigError(ValueError):
    """A LatencyConfig field of the wrong type or out of range, or flags
    that do not go together; the message names the flag."""


def open_lookup_table(path: str):
    """The table at ``path``; a LookupTableError naming the file (and the
    line) for a directory, a missing file or one that is no lookup table."""
    from mnas.latency.lut.table import LookupTable

    return LookupTable.load(path)


def load_predictor(
    config: LatencyConfig, lut_path: str, space, measure_missing: bool = True
):
    """The table at ``lut_path`` as a predictor for ``config``'s backend.

    Refuses a table measured on another backend or built for another space
    (LookupTableError naming both). With ``measure_missing`` an entry the
    table lacks is measured on the backend and added to the file.
    """
    from mnas.latency.lut.predictor import LatencyPredictor

    table = open_lookup_table(lut_path)
    backend = make_backend(config.backend, **config.backend_options())
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
        self._check_fields()
        if any(not s.strip() for s in self.serials):
            raise LatencyConfigError("--serial holds an empty serial")
        if len(set(self.serials)) != len(self.serials):
            raise LatencyConfigError(
                f"--serial lists a device twice: {','.join(self.serials)}"
            )
        if self.backend == "benchmark_model":
            if not self.benchmark_model:
                raise LatencyConfigError(
                    "--latency_backend=benchmark_model needs --benchmark_model="
                    "PATH (the binary; an Android build with --android/--serial)"
                )
            if self.taskset_mask is not None and not self.on_phone:
                raise LatencyConfigError(
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
                    raise LatencyConfigError(
                        f"{name} needs --latency_backend=benchmark_model "
                        f"(got --latency_backend={self.backend})"
                    )

    def _check_fields(self) -> None:
        """Each field's type and range (named by its flag), normalizing
        ``serials`` and ``cpus`` to tuples (cpus sorted, without repeats)."""
        error = LatencyConfigError
        if not isinstance(self.backend, str) or self.backend not in backend_names():
            raise error(
                f"unknown latency backend {shown(self.backend)}; choose one of "
                f"{', '.join(backend_names())}"
            )
        check_int("--num_threads", self.num_threads, 1, MAX_THREADS, error=error)
        check_int(
            "--num_runs", self.num_runs, 1, MAX_RUNS, error=error, allow_none=True
        )
        serials = self.serials
        if isinstance(serials, str | bytes) or not isinstance(serials, list | tuple):
            raise error(f"--serial must be a list of serials, got {shown(serials)}")
        if len(serials) > MAX_DEVICES:
            raise error(f"--serial lists {len(serials)} devices; at most {MAX_DEVICES}")
        for serial in serials:
            check_text("--serial", serial, MAX_TEXT_LENGTH, error=error)
        object.__setattr__(self, "serials", tuple(serials))
        for name, value in (
            ("--benchmark_model", self.benchmark_model),
            ("--latency_cache", self.cache_path),
        ):
            check_text(name, value, MAX_TEXT_LENGTH, error=error, allow_none=True)
        check_bool("--android", self.android, error=error)
        check_bool("--no_latency_cache", self.bypass_cache, error=error)
        mask = self.taskset_mask
        if mask is not None and (
            not isinstance(mask, str)
            or not 0 < len(mask.lower().removeprefix("0x")) <= MAX_CPU // 4 + 1
            or any(c not in "0123456789abcdef" for c in mask.lower().removeprefix("0x"))
        ):
            raise error(f"--taskset_mask must be hex (e.g. f0), got {shown(mask)}")
        cpus = self.cpus
        if cpus is not None:
            if isinstance(cpus, str | bytes) or not isinstance(
                cpus, list | tuple | set
            ):
                raise error(f"--cpus must be a list of CPU numbers, got {shown(cpus)}")
            if not cpus:
                raise error("--cpus lists no CPU")
            for cpu in cpus:
                check_int("--cpus", cpu, 0, MAX_CPU, error=error)
            object.__setattr__(self, "cpus", tuple(sorted({int(c) for c in cpus})))

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
        if not isinstance(data, Mapping):
            raise LatencyConfigError(
                f"a latency config must be a JSON object, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise LatencyConfigError(
                f"unknown latency config fields: {shown_names(unknown)}"
            )
        values = dict(data)
        if values.get("serials") is None:
            values["serials"] = ()
        return cls(**values)


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


def check_backends(backends: list[LatencyBackend]) -> None:
    """Reaches every backend's device now (e.g. ``adb devices`` for a phone),
    so a missing phone or binary fails before minutes of exporting."""
    for backend in backends:
        backend.fingerprint()


def backend_from_config(config: LatencyConfig) -> LatencyBackend:
    """The single backend of a one-device config (see :func:`pool_from_config`)."""
    if len(config.serials) > 1:
        raise LatencyConfigError(
            f"--serial lists {len(config.serials)} devices; a single backend "
            "measures on one (use a device pool)"
        )
    return backends_from_config(config)[0]


def pool_from_config(config: LatencyConfig):
    """A :class:`~mnas.latency.pool.DevicePool` with one backend per device."""
    from mnas.latency.pool import DevicePool

    return DevicePool(backends_from_config(config))
