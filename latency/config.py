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
from mnas.search_space import (
    check_bool,
    check_fields,
    check_int,
    check_real,
    check_text,
    shown,
)

DEFAULT_CACHE_PATH = "~/.cache/mnas/latency.sqlite"
#: Default lookup-table file; ``{backend}`` and ``{space}`` are filled in.
DEFAULT_LUT_PATH = "~/.cache/mnas/lut/{backend}-{space}.lut.jsonl"
BACKENDS = ("host", "litert-benchmark", "benchmark_model")

# Adaptive measurement (docs/latency_uncertainty.md). mnas-latency (and
# mnas-scale) time a few models and can wait for a tight interval; a search
# times every candidate inside its budget, so it aims lower and caps sooner
# (``SEARCH_MEASUREMENT``, applied by mnas.flags.latency.for_search).
DEFAULT_PRECISION = 0.02
DEFAULT_MAX_MEASURE_S = 60.0
SEARCH_MEASUREMENT = {"target_precision": 0.05, "max_measure_s": 15.0}
#: The host loop of one adaptive round: short, because what moves latency
#: between rounds is sampled by more rounds, not by longer ones (a round of
#: a 10 ms model takes about 0.2 s instead of benchmark_model's >= 1.5 s).
HOST_ROUND = {"warmup_runs": 3, "warmup_min_secs": 0.05, "min_secs": 0.1}
HOST_ROUND_RUNS = 10
MAX_MEASURE_ROUNDS = 10_000
MAX_MEASURE_S = 24 * 3600.0
MAX_REMEASURES = 100
#: Whole models timed in the same adaptive rounds (calibration, evaluation).
MODEL_BATCH = 100

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
    return LatencyPredictor(
        table, backend if measure_missing else None, timing=entry_timing(config)
    )


def entry_timing(config: LatencyConfig):
    """How a lookup table built or completed with ``config`` times its entries
    (``mnas.latency.lut.builder.AdaptiveTiming``), None for plain loops.

    Entries keep the table's own stopping rule (``ENTRY_SETTINGS``: ±5%, a
    few rounds) at the config's confidence; ``remeasures`` is the config's.
    """
    if not config.adaptive:
        return None
    from mnas.latency.lut.builder import ENTRY_SETTINGS, AdaptiveTiming

    settings = dataclasses.replace(ENTRY_SETTINGS, confidence=config.confidence)
    return AdaptiveTiming(settings, remeasures=config.remeasures)


def model_timing(config: LatencyConfig):
    """How whole models are timed for a table's calibration and evaluation:
    the config's stopping rule, several models in the same rounds."""
    if not config.adaptive:
        return None
    from mnas.latency.lut.builder import AdaptiveTiming

    return AdaptiveTiming(
        config.adaptive_settings(), batch=MODEL_BATCH, remeasures=config.remeasures
    )


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
      adaptive: time in interleaved rounds until the interval is within
        ``target_precision`` (or ``max_measure_s`` passed); each result
        carries its interval and a stable flag (``AdaptiveSettings``).
      target_precision: relative half-width of the interval to reach.
      confidence: level of the interval.
      min_rounds, max_rounds: rounds before a model may stop; after which
        it stops regardless.
      max_measure_s: time cap of one model's measurement.
      remeasures: how often a result flagged unstable is measured again
        later (search, lookup table, calibration) before it is used flagged.
      reference: preset timed interleaved with every model, for latency
        relative to it (e.g. ``mobilenet-v2``); None for none.
      reference_resolution: the reference's input resolution.
      ratio_precision: if set, a model also measures until the interval of
        its ratio to the reference is within this.
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
    adaptive: bool = True
    target_precision: float = DEFAULT_PRECISION
    confidence: float = 0.95
    min_rounds: int = 5
    max_rounds: int = 40
    max_measure_s: float = DEFAULT_MAX_MEASURE_S
    remeasures: int = 1
    reference: str | None = None
    reference_resolution: int = 224
    ratio_precision: float | None = None

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
        self._check_measurement()

    def _check_measurement(self) -> None:
        """The adaptive-measurement fields, each named by its flag."""
        error = LatencyConfigError
        check_bool("--latency_adaptive", self.adaptive, error=error)
        check_real(
            "--latency_precision",
            self.target_precision,
            0,
            1,
            low_open=True,
            high_open=True,
            error=error,
        )
        check_real(
            "--latency_confidence", self.confidence, 0.5, 1, high_open=True, error=error
        )
        check_int(
            "--latency_min_rounds", self.min_rounds, 2, MAX_MEASURE_ROUNDS, error=error
        )
        check_int(
            "--latency_max_rounds",
            self.max_rounds,
            self.min_rounds,
            MAX_MEASURE_ROUNDS,
            error=error,
        )
        check_real(
            "--latency_max_seconds",
            self.max_measure_s,
            0,
            MAX_MEASURE_S,
            low_open=True,
            error=error,
        )
        check_int(
            "--latency_remeasures", self.remeasures, 0, MAX_REMEASURES, error=error
        )
        check_int(
            "--latency_reference_resolution",
            self.reference_resolution,
            32,
            2048,
            error=error,
        )
        check_real(
            "--latency_ratio_precision",
            self.ratio_precision,
            0,
            1,
            low_open=True,
            high_open=True,
            error=error,
            allow_none=True,
        )
        if self.reference is not None:
            from mnas.search_space import preset_names

            if self.reference not in preset_names():
                raise error(
                    f"--latency_reference must be a preset "
                    f"({', '.join(preset_names())}), got {shown(self.reference)}"
                )
            if not self.adaptive:
                raise error(
                    "--latency_reference needs adaptive measurement: the reference is "
                    "timed in the same rounds (drop --nolatency_adaptive)"
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
        if self.adaptive and self.backend == "host":
            options.update(HOST_ROUND)  # one round of many (see HOST_ROUND)
            options.setdefault("num_runs", HOST_ROUND_RUNS)
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

    def adaptive_settings(self):
        """The stopping rule of ``mnas.latency.measure.adaptive``."""
        from mnas.latency.measure.adaptive import AdaptiveSettings

        return AdaptiveSettings(
            target=self.target_precision,
            confidence=self.confidence,
            min_rounds=self.min_rounds,
            max_rounds=self.max_rounds,
            max_seconds=self.max_measure_s,
            ratio_target=self.ratio_precision,
        )

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
        check_fields(cls, data, "latency config fields", error=LatencyConfigError)
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


def reference_model(config: LatencyConfig, directory: str | None = None):
    """``config.reference`` as a ``ReferenceModel`` (exported at
    ``config.reference_resolution`` when first timed), or None."""
    if config.reference is None:
        return None
    import os
    import tempfile

    from mnas.latency.measure.reference import ReferenceModel, default_reference_name
    from mnas.search_space import get_preset

    resolution = config.reference_resolution
    name = (
        default_reference_name(resolution)
        if config.reference == "mobilenet-v2"
        else f"{config.reference} @{resolution}"
    )

    def export() -> str:
        from mnas.latency.export import export_to_file

        folder = directory or tempfile.mkdtemp(prefix="mnas-reference-")
        path = os.path.join(folder, f"reference-{config.reference}-{resolution}.tflite")
        spec = get_preset(config.reference)
        return export_to_file(spec, path, resolution=resolution).path

    return ReferenceModel(name, export)


def backends_from_config(config: LatencyConfig, reference=None) -> list[LatencyBackend]:
    """One backend per device (one per serial; a single one otherwise).

    With ``adaptive`` each is an ``AdaptiveBackend`` (interleaved rounds,
    an interval and a stable flag on every result; ``config.reference``, or
    the given ``ReferenceModel``, timed in the same rounds). Each is then
    wrapped in a ``CachedBackend`` sharing one cache file unless the config
    has no cache; with ``bypass_cache`` they measure afresh. An adaptive
    cache re-measures cached results that are unstable, carry no interval
    or lack the ratio to this reference.
    """
    from mnas.latency.cache import CachedBackend

    devices: list[str | None] = list(config.serials) or [None]
    cache = open_cache(config)
    if config.adaptive and reference is None:
        reference = reference_model(config)
    backends: list[LatencyBackend] = []
    for serial in devices:
        backend = make_backend(config.backend, **config.backend_options(serial))
        if config.adaptive:
            from mnas.latency.measure.adaptive import AdaptiveBackend

            backend = AdaptiveBackend(backend, config.adaptive_settings(), reference)
        if cache is not None:
            backend = CachedBackend(
                backend,
                cache,
                bypass=config.bypass_cache,
                require_interval=config.adaptive,
                require_reference=None if reference is None else reference.name,
            )
        backends.append(backend)
    return backends


def check_backends(backends: list[LatencyBackend]) -> None:
    """Reaches every backend's device now (e.g. ``adb devices`` for a phone),
    so a missing phone or binary fails before minutes of exporting."""
    for backend in backends:
        backend.fingerprint()


def backend_from_config(config: LatencyConfig, reference=None) -> LatencyBackend:
    """The single backend of a one-device config (see :func:`pool_from_config`)."""
    if len(config.serials) > 1:
        raise LatencyConfigError(
            f"--serial lists {len(config.serials)} devices; a single backend "
            "measures on one (use a device pool)"
        )
    return backends_from_config(config, reference)[0]


def pool_from_config(config: LatencyConfig, reference=None):
    """A :class:`~mnas.latency.pool.DevicePool` with one backend per device."""
    from mnas.latency.pool import DevicePool

    return DevicePool(backends_from_config(config, reference))
