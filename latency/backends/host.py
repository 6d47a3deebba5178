"""In-process LiteRT timing, measured the way benchmark_model measures.

Uses the ``ai-edge-litert`` interpreter with its default XNNPACK delegate
(the CPU path phones use) and benchmark_model's loop: warm-up runs until
both a run count and a minimum time are met, then timed runs until both a
run count and a minimum time are met, capped by ``max_secs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from mnas.latency.backend import LatencyBackend
from mnas.latency.backends.affinity import pinned_to
from mnas.latency.backends.sysinfo import host_cpu_model, host_machine, litert_version
from mnas.latency.errors import LatencyError
from mnas.latency.measure.rounds import Round
from mnas.latency.result import BackendFingerprint, LatencyResult


@dataclass(frozen=True)
class HostOptions:
    """Loop and runtime settings; defaults are benchmark_model's."""

    num_threads: int = 1
    warmup_runs: int = 1
    warmup_min_secs: float = 0.5
    num_runs: int = 50
    min_secs: float = 1.0
    max_secs: float = 150.0
    use_xnnpack: bool = True
    cpus: tuple[int, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_threads < 1:
            raise ValueError("num_threads must be >= 1")
        if self.warmup_runs < 0 or self.num_runs < 1:
            raise ValueError("need warmup_runs >= 0 and num_runs >= 1")
        if min(self.warmup_min_secs, self.min_secs) < 0 or self.max_secs <= 0:
            raise ValueError("time limits must be >= 0 (max_secs > 0)")
        if self.cpus is not None:
            object.__setattr__(self, "cpus", tuple(sorted(set(self.cpus))))


class HostBackend(LatencyBackend):
    """Times models in this process with the LiteRT interpreter."""

    name = "host"

    def __init__(
        self,
        num_threads: int = 1,
        warmup_runs: int = 1,
        warmup_min_secs: float = 0.5,
        num_runs: int = 50,
        min_secs: float = 1.0,
        max_secs: float = 150.0,
        use_xnnpack: bool = True,
        cpus: Iterable[int] | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.options = HostOptions(
            num_threads=num_threads,
            warmup_runs=warmup_runs,
            warmup_min_secs=warmup_min_secs,
            num_runs=num_runs,
            min_secs=min_secs,
            max_secs=max_secs,
            use_xnnpack=use_xnnpack,
            cpus=None if cpus is None else tuple(cpus),
            seed=seed,
        )
        self._clock = clock

    def fingerprint(self) -> BackendFingerprint:
        opts = self.options
        return BackendFingerprint.create(
            backend=self.name,
            device_model=host_machine(),
            device_id=host_cpu_model(),
            num_threads=opts.num_threads,
            runtime_version=litert_version(),
            options={
                "delegate": "xnnpack" if opts.use_xnnpack else "none",
                "cpus": opts.cpus,
            },
        )

    def measure(self, tflite_path: str) -> LatencyResult:
        with pinned_to(self.options.cpus):
            samples, init_ms, first_run_ms = self._time(str(tflite_path))
        return LatencyResult.from_samples(
            samples, self.fingerprint(), init_ms=init_ms, first_run_ms=first_run_ms
        )

    def measure_rounds(self, tflite_path: str, rounds: int) -> list[Round]:
        """``rounds`` rounds, each with a fresh interpreter, keeping run times.

        A new interpreter per round places the model's buffers anew, which
        is part of what moves latency between rounds; the adaptive layer
        (:mod:`mnas.latency.measure.adaptive`) samples that spread.  Each
        round runs this backend's warm-up and timed loop.
        """
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        fingerprint = self.fingerprint()
        out = []
        with pinned_to(self.options.cpus):
            for _ in range(rounds):
                samples, init_ms, first_run_ms = self._time(str(tflite_path))
                result = LatencyResult.from_samples(
                    samples, fingerprint, init_ms=init_ms, first_run_ms=first_run_ms
                )
                out.append(Round(result, tuple(samples)))
        return out

    def _time(self, path: str) -> tuple[list[float], float, float]:
        """(run times, init ms, first run ms) with a freshly loaded interpreter."""
        opts = self.options
        clock = self._clock
        start = clock()
        interpreter = self._load(path)
        init_ms = (clock() - start) * 1e3
        _fill_random_inputs(interpreter, np.random.default_rng(opts.seed))

        invoke = interpreter.invoke
        start = clock()
        invoke()
        first_run_ms = (clock() - start) * 1e3

        # Warm-up: the first run counts as the first warm-up run.
        warmup_runs = 1
        warmup_start = start
        while (
            warmup_runs < opts.warmup_runs
            or clock() - warmup_start < opts.warmup_min_secs
        ) and clock() - warmup_start <= opts.max_secs:
            invoke()
            warmup_runs += 1

        samples: list[float] = []
        loop_start = clock()
        while True:
            elapsed = clock() - loop_start
            if len(samples) >= opts.num_runs and elapsed >= opts.min_secs:
                break
            if elapsed > opts.max_secs and samples:
                break
            t0 = clock()
            invoke()
            samples.append((clock() - t0) * 1e3)
        return samples, init_ms, first_run_ms

    def _load(self, path: str):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = (
            OpResolverType.BUILTIN
            if self.options.use_xnnpack
            else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        what = f"ai_edge_litert Interpreter(model_path={path!r})"
        try:
            interpreter = Interpreter(
                model_path=path,
                num_threads=self.options.num_threads,
                experimental_op_resolver_type=resolver,
            )
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError, OSError) as exc:
            raise LatencyError(f"LiteRT cannot load {path}", what, str(exc)) from exc
        if self.options.use_xnnpack and not uses_delegate(interpreter):
            raise LatencyError(
                f"XNNPACK delegated nothing in {path}: timing would not be the "
                "CPU path a phone uses",
                what,
            )
        return interpreter


def uses_delegate(interpreter) -> bool:
    """Whether any node of the allocated graph runs in a delegate."""
    return any(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def _fill_random_inputs(interpreter, rng: np.random.Generator) -> None:
    """Random inputs of the right dtype (values do not change conv timing)."""
    for detail in interpreter.get_input_details():
        shape = tuple(int(d) for d in detail["shape"])
        dtype = np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.floating):
            data = rng.uniform(-1.0, 1.0, shape).astype(dtype)
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            low, high = max(int(info.min), -128), min(int(info.max), 127)
            data = rng.integers(low, high, shape, endpoint=True).astype(dtype)
        else:
            data = np.zeros(shape, dtype)
        interpreter.set_tensor(detail["index"], data)
