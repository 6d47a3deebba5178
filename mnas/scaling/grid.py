"""Grid search of EfficientNet's (alpha, beta, gamma) at phi = 1.

Each triple that satisfies ``alpha * beta**2 * gamma**2 ~= 2`` (within a
tolerance) scales the base architecture by phi = 1; the scaled network is
trained on the proxy task at the proxy resolution times gamma (rounded to a
multiple of 4) and scored by its held-out accuracy, or, when a latency target
is given, by the MnasNet reward with the latency of the network exported at
its deployment resolution (the base's resolution times gamma, rounded to 8),
measured on the given backend. The triples are ranked by score.

Library code: configs in, results out; the binary (``mnas-scale
--grid_search``) reads flags. With a work directory the grid search keeps its
state like the other search loops (``mnas.io.work_dir``, ``mnas.io.jsonl``,
``mnas.search.outputs``) and a resume skips the finished triples.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from mnas.io.atomic import write_json_atomic
from mnas.io.jsonl import JsonlLog
from mnas.io.tables import format_table
from mnas.io.work_dir import claim_work_dir
from mnas.model.cost import compute_stats
from mnas.search.outputs import MODELS_DIR, Outputs, rank
from mnas.search.reward import RewardConfig, compute_reward
from mnas.search_space import ArchSpec
from mnas.search_space.scaling import (
    DEFAULT_TOLERANCE,
    ScalingCoefficients,
    ScalingError,
    scale,
    scaled_resolution,
)
from mnas.train.data import load_proxy_data
from mnas.train.data_config import DataConfig
from mnas.train.proxy_config import TrainerConfig

RESULTS_FILE = "scaling_search.json"
JOURNAL_FILE = "triples.jsonl"
# The grid may grow or shrink on resume; finished triples are kept.
RESUMABLE_FIELDS = frozenset({"triples"})
PROXY_RESOLUTION_MULTIPLE = 4

# Five triples within 0.1 of the constraint: the published one, a balanced
# one, and one leaning on each of depth, width and resolution.
DEFAULT_TRIPLES: tuple[tuple[float, float, float], ...] = (
    (1.2, 1.1, 1.15),
    (1.1, 1.1, 1.2),
    (1.6, 1.05, 1.05),
    (1.0, 1.35, 1.05),
    (1.0, 1.05, 1.35),
)


#: Values per coefficient: the grid is their cube, each point a training run.
MAX_GRID_VALUES = 100


def grid_triples(
    step: float = 0.05,
    low: float = 1.0,
    high: float = 1.6,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[tuple[float, float, float]]:
    """Every (alpha, beta, gamma) on the grid ``low, low + step, ..., high``
    with ``|alpha * beta^2 * gamma^2 - 2| <= tolerance``."""
    if not (math.isfinite(step) and step > 0):
        raise ScalingError(f"grid step must be a finite number > 0, got {step!r}")
    if not (math.isfinite(low) and math.isfinite(high) and 1.0 <= low <= high):
        raise ScalingError(
            f"grid range must satisfy 1 <= low <= high, got {low}..{high}"
        )
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    if count > MAX_GRID_VALUES:
        raise ScalingError(
            f"grid step {step} gives {count} values per coefficient on "
            f"{low}..{high}; at most {MAX_GRID_VALUES} (a cube of them is scored)"
        )
    values = [round(low + i * step, 6) for i in range(count)]
    triples = []
    for alpha in values:
        for beta in values:
            for gamma in values:
                product = alpha * beta**2 * gamma**2
                if abs(product - 2.0) <= tolerance:
                    triples.append((alpha, beta, gamma))
    return triples


@dataclasses.dataclass(frozen=True)
class ScalingSearchConfig:
    """What to search and how to score it."""

    triples: tuple[tuple[float, float, float], ...] = DEFAULT_TRIPLES
    tolerance: float = DEFAULT_TOLERANCE
    phi: float = 1.0
    data: DataConfig = DataConfig(resolution=32)
    trainer: TrainerConfig = TrainerConfig(epochs=4)
    reward: RewardConfig | None = None  # set: score by reward with latency
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "triples", tuple(tuple(float(v) for v in t) for t in self.triples)
        )
        if not self.triples:
            raise ScalingError("the grid holds no (alpha, beta, gamma) triple")
        for triple in self.triples:
            if len(triple) != 3:
                raise ScalingError(f"a triple needs 3 values, got {triple!r}")
            ScalingCoefficients(*triple).check(self.tolerance)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form written to the work directory's ``config.json``."""
        return {
            "triples": [list(t) for t in self.triples],
            "tolerance": self.tolerance,
            "phi": self.phi,
            "data": dataclasses.asdict(self.data),
            "trainer": dataclasses.asdict(self.trainer),
            "reward": None if self.reward is None else dataclasses.asdict(self.reward),
            "seed": self.seed,
        }


@dataclasses.dataclass(frozen=True)
class TripleResult:
    alpha: float
    beta: float
    gamma: float
    flops_factor: float
    proxy_resolution: int
    resolution: int
    params: int
    macs: int
    accuracy: float | None
    latency_ms: float | None
    score: float | None
    train_s: float
    error: str | None = None

    @property
    def triple(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta, self.gamma)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TripleResult:
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclasses.dataclass(frozen=True)
class ScalingSearchResult:
    base: ArchSpec
    config: ScalingSearchConfig
    results: tuple[TripleResult, ...]  # best score first; failures last
    wall_time_s: float

    @property
    def chosen(self) -> TripleResult | None:
        scored = [r for r in self.results if r.score is not None]
        return scored[0] if scored else None

    def table(self) -> str:
        rows = [
            [
                rank,
                f"{r.alpha:g}",
                f"{r.beta:g}",
                f"{r.gamma:g}",
                r.flops_factor,
                r.proxy_resolution,
                r.resolution,
                r.params,
                r.macs,
                "-" if r.accuracy is None else r.accuracy,
                "-" if r.latency_ms is None else r.latency_ms,
                "failed" if r.score is None else r.score,
                r.train_s,
            ]
            for rank, r in enumerate(self.results, 1)
        ]
        return format_table(
            [
                "rank",
                "alpha",
                "beta",
                "gamma",
                "a*b^2*g^2",
                "proxy px",
                "deploy px",
                "params",
                "MACs",
                "accuracy",
                "latency ms",
                "score",
                "train s",
            ],
            rows,
        )

    def to_dict(self) -> dict[str, Any]:
        chosen = self.chosen
        return {
            "base": self.base.to_dict(),
            "phi": self.config.phi,
            "tolerance": self.config.tolerance,
            "data": dataclasses.asdict(self.config.data),
            "trainer": dataclasses.asdict(self.config.trainer),
            "reward": None
            if self.config.reward is None
            else dataclasses.asdict(self.config.reward),
            "score": "reward" if self.config.reward is not None else "accuracy",
            "wall_time_s": self.wall_time_s,
            "chosen": None
            if chosen is None
            else {"alpha": chosen.alpha, "beta": chosen.beta, "gamma": chosen.gamma},
            "results": [r.to_dict() for r in self.results],
        }

    def write(self, output_dir: str) -> str:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, RESULTS_FILE)
        write_json_atomic(path, self.to_dict())
        return path


def run_scaling_search(
    base: ArchSpec,
    config: ScalingSearchConfig,
    backend=None,
    progress: Callable[[str], None] | None = None,
    work_dir: str | None = None,
    resume: bool = False,
) -> ScalingSearchResult:
    """Trains and scores every triple of ``config``; ``backend`` (a
    ``LatencyBackend``) is required when ``config.reward`` is set.

    With ``work_dir`` the search keeps its state there like the other loops:
    ``config.json``, ``triples.jsonl`` (one line per finished triple, so a
    ``resume`` skips them), ``best.json`` (the best triple's scaled
    architecture first, readable by ``--arch=best.json``), ``scaling_search.json``
    and, when scoring by reward, the best triple's model under ``models/``
    (and ``pareto.png``). The directory is locked while the search runs.
    """
    if config.reward is not None and backend is None:
        raise ValueError("a latency target needs a latency backend")
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="mnas-scale-") as scratch:
            return _GridRun(base, config, backend, progress, scratch, None).run()
    claimed = claim_work_dir(
        work_dir,
        {"base": base.to_dict(), **config.to_dict()},
        resume,
        RESUMABLE_FIELDS,
        ScalingError,
        state_file=JOURNAL_FILE,
    )
    try:
        journal = JsonlLog.open(
            claimed.file(JOURNAL_FILE),
            TripleResult.from_dict,
            TripleResult.to_dict,
            "triple result",
        )
        for note in journal.recovery_notes:
            if progress is not None:
                progress(f"journal recovery: {note}")
        models = claimed.file(MODELS_DIR)
        os.makedirs(models, exist_ok=True)
        grid = _GridRun(base, config, backend, progress, models, journal)
        result = grid.run()
        result.write(work_dir)
        return result
    finally:
        claimed.release()


def _key(triple: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in triple)


class _GridRun:
    """One pass over the grid; ``journal`` (None: no work dir) holds the
    triples finished before and receives the new ones."""

    def __init__(self, base, config, backend, progress, models, journal) -> None:
        self.base = base
        self.config = config
        self.backend = backend
        self.progress = progress
        self.models = models
        self.journal = journal
        self.outputs = None if journal is None else Outputs(os.path.dirname(models))
        self.datasets: dict[int, Any] = {}

    def run(self) -> ScalingSearchResult:
        start = time.perf_counter()
        done = (
            {}
            if self.journal is None
            else {_key(r.triple): r for r in self.journal.records}
        )
        results: list[TripleResult] = []
        total = len(self.config.triples)
        for index, triple in enumerate(self.config.triples):
            previous = done.get(_key(triple))
            if previous is not None:
                results.append(previous)
                self._say(_progress_line(index, total, previous) + " [journal]")
                continue
            result = self._evaluate(triple)
            results.append(result)
            if self.journal is not None:
                self.journal.append(result)
                self._write_outputs(results)
            self._say(_progress_line(index, total, result))
        order = {_key(t): i for i, t in enumerate(self.config.triples)}
        ranked = rank(results, lambda r: r.score, lambda r: order[_key(r.triple)])
        if self.journal is not None:
            self._write_outputs(results)
        return ScalingSearchResult(
            base=self.base,
            config=self.config,
            results=tuple(ranked),
            wall_time_s=time.perf_counter() - start,
        )

    def _say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def _evaluate(self, triple: tuple[float, float, float]) -> TripleResult:
        import keras

        from mnas.model.builder import build_model
        from mnas.search.workers.candidate import export_trained
        from mnas.train.proxy import TrainingDivergedError, train_and_evaluate

        config = self.config
        alpha, beta, gamma = triple
        spec = scale(self.base, config.phi, alpha, beta, gamma, config.tolerance)
        proxy_px = scaled_resolution(
            config.data.resolution, gamma**config.phi, PROXY_RESOLUTION_MULTIPLE
        )
        if proxy_px not in self.datasets:
            self.datasets[proxy_px] = load_proxy_data(
                dataclasses.replace(config.data, resolution=proxy_px)
            )
        data = self.datasets[proxy_px]
        stats = compute_stats(spec, num_classes=data.num_classes)
        keras.utils.set_random_seed(config.seed)
        model = build_model(spec, data.image_shape, data.num_classes)
        accuracy = latency_ms = score = None
        error = None
        train_s = 0.0
        try:
            trained = train_and_evaluate(model, data, config.trainer)
            accuracy = float(trained.accuracy)
            train_s = float(trained.wall_time_s)
            score = accuracy
        except TrainingDivergedError as failure:
            error = str(failure)
        if config.reward is not None and error is None:
            path = os.path.join(self.models, triple_model_name(triple))
            export_trained(spec, model, spec.resolution, path)
            latency_ms = float(self.backend.measure(path).median_ms)
            score = compute_reward(accuracy, latency_ms, config.reward)
        keras.backend.clear_session()
        return TripleResult(
            alpha=alpha,
            beta=beta,
            gamma=gamma,
            flops_factor=ScalingCoefficients(alpha, beta, gamma).flops_factor,
            proxy_resolution=proxy_px,
            resolution=spec.resolution,
            params=stats.params,
            macs=stats.macs,
            accuracy=accuracy,
            latency_ms=latency_ms,
            score=score,
            train_s=train_s,
            error=error,
        )

    def _write_outputs(self, results: Sequence[TripleResult]) -> None:
        """``best.json``, the best triple's model, ``pareto.png`` (work dir only)."""
        order = {_key(t): i for i, t in enumerate(self.config.triples)}
        ranked = rank(
            (r for r in results if r.score is not None),
            lambda r: r.score,
            lambda r: order.get(_key(r.triple), len(order)),
        )
        best = ranked[:1]
        self.outputs.prune_models(
            [triple_model_name(r.triple) for r in results],
            {triple_model_name(r.triple) for r in best},
        )
        entries = []
        for position, r in enumerate(best, 1):
            spec = scale(
                self.base,
                self.config.phi,
                r.alpha,
                r.beta,
                r.gamma,
                self.config.tolerance,
            )
            model = self.outputs.model_path(triple_model_name(r.triple))
            entries.append(
                {
                    "rank": position,
                    "alpha": r.alpha,
                    "beta": r.beta,
                    "gamma": r.gamma,
                    "score": r.score,
                    "accuracy": r.accuracy,
                    "latency_ms": r.latency_ms,
                    "block_strings": list(spec.block_strings),
                    "arch": spec.to_dict(),
                    "tflite": model if os.path.exists(model) else None,
                }
            )
        self.outputs.write_best(
            {
                "method": "scaling_grid",
                "base": self.base.name,
                "phi": self.config.phi,
                "score": "reward" if self.config.reward is not None else "accuracy",
            },
            len(ranked),
            entries,
        )
        timed = [r for r in ranked if r.latency_ms is not None]
        if timed:
            self.outputs.plot_pareto(
                [(r.latency_ms, r.accuracy) for r in timed],
                self.config.reward.target_ms,
                title=f"mnas-scale grid: {len(timed)} scored triples",
            )


def triple_model_name(triple: Sequence[float]) -> str:
    alpha, beta, gamma = triple
    return f"triple-{alpha:g}-{beta:g}-{gamma:g}.tflite"


def _progress_line(index: int, total: int, r: TripleResult) -> str:
    head = f"[{index + 1}/{total}] alpha={r.alpha:g} beta={r.beta:g} gamma={r.gamma:g}"
    if r.score is None:
        return f"{head}: failed ({r.error})"
    text = f"{head}: accuracy {r.accuracy:.3f}"
    if r.latency_ms is not None:
        text += f", latency {r.latency_ms:.2f} ms, reward {r.score:.4f}"
    return text + f" ({r.train_s:.1f} s training)"


def parse_triples(items: Sequence[str]) -> tuple[tuple[float, float, float], ...]:
    """``["1.2:1.1:1.15", ...]`` into triples; a clear error otherwise."""
    triples = []
    for item in items:
        parts = item.split(":")
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) != 3:
            raise ScalingError(
                f"a triple is written alpha:beta:gamma (e.g. 1.2:1.1:1.15), "
                f"got {item!r}"
            )
        triples.append(values)
    return tuple(triples)
