"""The MnasNet search loop: propose -> decode -> evaluate -> measure -> reward.

Only this module (and the binaries) join the layers: the controller sees
decisions, the builder sees an ``ArchSpec``, the latency backends see
``.tflite`` files.

Durability. Everything lives in the work directory: ``config.json``, the
append-only ``trials.jsonl``, the controller checkpoint, TensorBoard summaries,
``best.json``, ``pareto.png`` and the best models as ``.tflite``. The order of
writes makes a kill at any moment recoverable:

1. ``controller.propose()``; the controller checkpoint is saved; then the
   RUNNING record is appended. A proposal the journal never saw is turned into
   a trial on resume.
2. The COMPLETED/FAILED record is appended; then the reward is fed back and the
   checkpoint saved. On resume, finished trials whose proposal the checkpoint
   still holds as pending are fed back again (replay), so no reward is lost or
   counted twice.
3. RUNNING trials found on resume are re-run with the same actions and id.

Latency modes (``latency_mode``): ``measured`` times every exported model on
the backend; ``predicted`` scores with the lookup-table predictor and times
nothing; ``verified`` scores with the predictor and also times each trial
that enters the top-k, appending a record with both numbers (the reward stays
the predicted one, so the controller sees one consistent signal).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from mnas.io.atomic import write_json_atomic
from mnas.io.progress import Progress
from mnas.io.work_dir import claim_work_dir
from mnas.search.reward import RewardConfig, compute_reward
from mnas.search.trial import Journal, TrialRecord
from mnas.search_space import ArchSpec, get_search_space

JOURNAL_FILE = "trials.jsonl"
BEST_FILE = "best.json"
PARETO_FILE = "pareto.png"
CONTROLLER_DIR = "controller"
MODELS_DIR = "models"
TENSORBOARD_DIR = "tensorboard"
WORKER_LOG_DIR = "workers"

LATENCY_MODES = ("measured", "predicted", "verified")

# Fields that may change when a search is resumed.
RESUMABLE_FIELDS = frozenset(
    {"num_trials", "num_workers", "trial_timeout_s", "work_dir"}
)


class SearchConfigError(ValueError):
    """A search cannot start or resume with this configuration."""


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search; written to ``config.json``.

    ``data`` and ``trainer`` are the kwargs of ``mnas.train.data.DataConfig`` and
    ``mnas.train.proxy.TrainerConfig``; ``controller`` those of
    ``mnas.controller.ControllerConfig``; ``latency_options`` those of the
    latency backend.
    """

    work_dir: str
    num_trials: int = 16
    num_workers: int = 1
    space: str = "mnasnet"
    controller_kind: str = "reinforce"
    controller: dict[str, Any] = dataclasses.field(default_factory=dict)
    reward: RewardConfig = RewardConfig()
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    trainer: dict[str, Any] = dataclasses.field(default_factory=dict)
    deployment_resolution: int = 224
    latency_backend: str = "host"
    latency_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    latency_cache: str | None = None
    latency_mode: str = "measured"
    lut_path: str | None = None
    top_k: int = 3
    trial_timeout_s: float = 3600.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_trials < 1:
            raise SearchConfigError(f"num_trials must be >= 1, got {self.num_trials}")
        if self.num_workers < 1:
            raise SearchConfigError(f"num_workers must be >= 1, got {self.num_workers}")
        if self.deployment_resolution < 32:
            raise SearchConfigError(
                f"deployment_resolution must be >= 32, got {self.deployment_resolution}"
            )
        if self.top_k < 1:
            raise SearchConfigError(f"top_k must be >= 1, got {self.top_k}")
        if self.latency_mode not in LATENCY_MODES:
            raise SearchConfigError(
                f"latency mode must be one of {', '.join(LATENCY_MODES)}, "
                f"got {self.latency_mode!r}"
            )
        if self.latency_mode != "measured" and not self.lut_path:
            raise SearchConfigError(
                f"--latency={self.latency_mode} needs a lookup table (--lut); build "
                "one with `mnas-latency --build_lut`"
            )
        if not isinstance(self.reward, RewardConfig):
            object.__setattr__(self, "reward", RewardConfig(**self.reward))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        data = dict(data)
        data["reward"] = RewardConfig(**data.get("reward", {}))
        return cls(**data)


class Pool(Protocol):
    def free_slots(self) -> int: ...
    def busy(self) -> int: ...
    def submit(self, trial_id: int, task: dict[str, Any]) -> None: ...
    def poll(self, timeout: float = 1.0) -> list: ...
    def close(self) -> None: ...


class Backend(Protocol):
    def measure(self, tflite_path: str) -> Any: ...


class Search:
    """One search in one work directory. ``run()`` returns the best trials."""

    def __init__(
        self,
        config: SearchConfig,
        pool: Pool,
        backend: Backend,
        resume: bool = False,
        controller_factory: Callable[..., Any] | None = None,
        log: Callable[[str], None] = print,
        progress_stream=None,
        predictor=None,
    ):
        self.config = config
        self.pool = pool
        self.backend = backend
        if config.latency_mode != "measured" and predictor is None:
            raise SearchConfigError(
                f"latency mode {config.latency_mode!r} needs a latency predictor"
            )
        self.predictor = predictor
        self.log = log
        self.space = get_search_space(config.space)
        self._progress_stream = progress_stream
        self._prepare_work_dir(resume)
        self.journal = Journal.open(self._path(JOURNAL_FILE))
        for note in self.journal.recovery_notes:
            self.log(f"journal recovery: {note}")
        self.controller = self._make_controller(controller_factory)
        self._writer = None

    # -- setup -----------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return os.path.join(self.config.work_dir, *parts)

    def _prepare_work_dir(self, resume: bool) -> None:
        claim_work_dir(
            self.config.work_dir,
            self.config.to_dict(),
            resume,
            RESUMABLE_FIELDS,
            SearchConfigError,
            state_file=JOURNAL_FILE,
        )
        for sub in (MODELS_DIR, CONTROLLER_DIR):
            os.makedirs(self._path(sub), exist_ok=True)

    def _make_controller(self, factory):
        from mnas.controller import ControllerConfig, make_controller

        controller_config = ControllerConfig(
            **{"seed": self.config.seed, **self.config.controller}
        )
        factory = factory or make_controller
        controller = factory(
            self.config.controller_kind, self.space.decisions(), controller_config
        )
        checkpoint_dir = self._path(CONTROLLER_DIR)
        import tensorflow as tf

        if tf.train.latest_checkpoint(checkpoint_dir):
            controller.restore(checkpoint_dir)
        return controller

    # -- the loop ----------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        latest = self.journal.latest()
        pending = {p.proposal_id: p for p in self.controller.pending_proposals()}
        replayed = 0
        for record in latest.values():
            if record.finished and record.proposal_id in pending:
                self._feed_controller(record)
                del pending[record.proposal_id]
                replayed += 1
        reruns = [r for r in latest.values() if r.status == "RUNNING"]
        known = {r.proposal_id for r in latest.values()}
        orphans = [p for pid, p in sorted(pending.items()) if pid not in known]
        if replayed or reruns or orphans:
            self.controller.save(self._path(CONTROLLER_DIR))
            self.log(
                f"resuming: {sum(r.finished for r in latest.values())} trials finished, "
                f"{len(reruns)} interrupted trials to re-run, {replayed} rewards replayed, "
                f"{len(orphans)} unrecorded proposals"
            )
        finished = sum(1 for r in latest.values() if r.finished)
        progress = Progress(self.config.num_trials, finished, self._progress_stream)
        in_flight: dict[int, TrialRecord] = {}
        try:
            while finished < self.config.num_trials:
                while (
                    self.pool.free_slots() > 0
                    and finished + len(in_flight) < self.config.num_trials
                ):
                    record = self._next_trial(reruns, orphans)
                    self.journal.append(record)
                    self.pool.submit(record.trial_id, self._task(record))
                    in_flight[record.trial_id] = record
                outcomes = self.pool.poll(1.0)
                latencies = self._latencies(outcomes, in_flight)
                for outcome in outcomes:
                    record = in_flight.pop(outcome.trial_id)
                    record = self._finish(
                        record, outcome, latencies.get(outcome.trial_id)
                    )
                    finished += 1
                    progress.update(finished, self._progress_message(record))
        finally:
            self.pool.close()
            if self._writer is not None:
                self._writer.close()
        best = self._write_outputs(final=True)
        return best

    def _next_trial(self, reruns: list[TrialRecord], orphans: list) -> TrialRecord:
        if reruns:
            old = reruns.pop(0)
            return old.replace(status="RUNNING", attempt=old.attempt + 1, error=None)
        if orphans:
            proposal = orphans.pop(0)
        else:
            proposal = self.controller.propose()
            self.controller.save(self._path(CONTROLLER_DIR))
        spec = self.space.decode(proposal.actions)
        return TrialRecord(
            trial_id=self.journal.next_trial_id(),
            status="RUNNING",
            proposal_id=proposal.proposal_id,
            actions=proposal.actions,
            block_strings=spec.block_strings,
        )

    def _task(self, record: TrialRecord) -> dict[str, Any]:
        spec = self.space.decode(record.actions)
        return {
            "trial_id": record.trial_id,
            "arch": spec.to_dict(),
            "data": self.config.data,
            "trainer": self.config.trainer,
            "deployment_resolution": self.config.deployment_resolution,
            "tflite_path": self._path(
                MODELS_DIR, f"trial-{record.trial_id:05d}.tflite"
            ),
            "seed": self.config.seed + record.trial_id,
        }

    def _latencies(
        self, outcomes: list, in_flight: dict[int, TrialRecord]
    ) -> dict[int, tuple[Any, str | None, float]]:
        if self.config.latency_mode == "measured":
            return self._measure(outcomes)
        return self._predict(outcomes, in_flight)

    def _predict(
        self, outcomes: list, in_flight: dict[int, TrialRecord]
    ) -> dict[int, tuple[Any, str | None, float]]:
        """Lookup-table predictions for the finished models (nothing is timed)."""
        from mnas.latency.lut.predictor import LookupTableBackend

        lut = LookupTableBackend(self.predictor)
        predicted: dict[int, tuple[Any, str | None, float]] = {}
        for outcome in outcomes:
            if not outcome.ok:
                continue
            spec = self.space.decode(in_flight[outcome.trial_id].actions)
            start = time.perf_counter()
            try:
                result = lut.measure_spec(
                    spec,
                    resolution=self.config.deployment_resolution,
                    num_classes=outcome.result.get("num_classes"),
                )
                error = None
            except Exception as failure:  # noqa: BLE001 - fails only this trial
                result, error = None, str(failure)
            predicted[outcome.trial_id] = (result, error, time.perf_counter() - start)
        return predicted

    def _measure(self, outcomes: list) -> dict[int, tuple[Any, str | None, float]]:
        """Times the finished models: (result, error, seconds) per trial.

        A device pool (``measure_all``) spreads them over its devices; a single
        backend takes them in turn.
        """
        done = [o for o in outcomes if o.ok]
        if not done:
            return {}
        paths = [o.result["tflite_path"] for o in done]
        start = time.perf_counter()
        measured: dict[int, tuple[Any, str | None, float]] = {}
        if hasattr(self.backend, "measure_all"):
            pooled = self.backend.measure_all(paths)
            seconds = (time.perf_counter() - start) / len(done)
            for outcome, item in zip(done, pooled):
                error = None if item.ok else str(item.error)
                measured[outcome.trial_id] = (item.result, error, seconds)
            return measured
        for outcome, path in zip(done, paths):
            start = time.perf_counter()
            try:
                result, error = self.backend.measure(path), None
            except Exception as failure:  # noqa: BLE001 - fails only this trial
                result, error = None, str(failure)
            measured[outcome.trial_id] = (result, error, time.perf_counter() - start)
        return measured

    def _finish(self, record: TrialRecord, outcome, measured) -> TrialRecord:
        if not outcome.ok:
            return self._fail(record, outcome.error or "unknown error")
        result = outcome.result
        timings = dict(result.get("timings", {}))
        latency, error, seconds = measured
        timings["latency_s"] = seconds
        if error is not None:
            return self._fail(record, f"latency measurement failed: {error}", timings)
        latency_ms = float(latency.median_ms)
        accuracy = float(result["accuracy"])
        if not (
            math.isfinite(accuracy) and math.isfinite(latency_ms) and latency_ms > 0
        ):
            return self._fail(
                record,
                f"invalid measurement: accuracy={accuracy}, latency={latency_ms} ms",
                timings,
            )
        reward = compute_reward(accuracy, latency_ms, self.config.reward)
        predicted = self.config.latency_mode != "measured"
        completed = record.replace(
            status="COMPLETED",
            accuracy=accuracy,
            latency_ms=latency_ms,
            latency=latency.to_dict() if hasattr(latency, "to_dict") else None,
            latency_source="predicted" if predicted else "measured",
            predicted_ms=latency_ms if predicted else None,
            measured_ms=None if predicted else latency_ms,
            reward=reward,
            timings=timings,
            tflite_path=result["tflite_path"],
        )
        self.journal.append(completed)
        self._feed_controller(completed)
        self.controller.save(self._path(CONTROLLER_DIR))
        if self.config.latency_mode == "verified":
            completed = self._verify_top_k(completed)
        self._write_outputs()
        return completed

    def _verify_top_k(self, record: TrialRecord) -> TrialRecord:
        """Times every top-k trial still lacking a measurement; returns ``record``
        as last written. A failed timing is logged and leaves the trial as it was."""
        ranked = sorted(self.completed(), key=lambda r: (-r.reward, r.trial_id))
        latest = record
        for top in ranked[: self.config.top_k]:
            if top.measured_ms is not None or not top.tflite_path:
                continue
            if not os.path.exists(top.tflite_path):
                continue
            try:
                measured = self.backend.measure(top.tflite_path)
            except Exception as failure:  # noqa: BLE001 - the score stands
                self.log(f"trial {top.trial_id}: verification failed: {failure}")
                continue
            verified = dataclasses.replace(top, measured_ms=float(measured.median_ms))
            self.journal.append(verified)
            self.log(
                f"trial {top.trial_id} verified: predicted {top.predicted_ms:.2f} ms, "
                f"measured {verified.measured_ms:.2f} ms"
            )
            if top.trial_id == record.trial_id:
                latest = verified
        return latest

    def _fail(self, record: TrialRecord, error: str, timings=None) -> TrialRecord:
        failed = record.replace(status="FAILED", error=error, timings=timings or {})
        self.journal.append(failed)
        self._feed_controller(failed)
        self.controller.save(self._path(CONTROLLER_DIR))
        self.log(f"trial {record.trial_id} FAILED: {error.splitlines()[0]}")
        self._write_outputs()
        return failed

    def _feed_controller(self, record: TrialRecord) -> None:
        pending = {p.proposal_id for p in self.controller.pending_proposals()}
        if record.proposal_id not in pending:
            return
        if record.status == "COMPLETED":
            updated = self.controller.feedback(record.proposal_id, record.reward)
            if updated:
                self._summaries_controller()
        else:
            self.controller.feedback_failed(record.proposal_id, record.error or "")

    # -- outputs -----------------------------------------------------------------
    def completed(self) -> list[TrialRecord]:
        return [r for r in self.journal.latest().values() if r.status == "COMPLETED"]

    def _summary_writer(self):
        if self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self._path(TENSORBOARD_DIR))
        return self._writer

    def _summaries_controller(self) -> None:
        import tensorflow as tf

        summary = self.controller.state_summary()
        with self._summary_writer().as_default(step=self.controller.num_updates):
            for key in ("baseline", "entropy", "loss", "mean_reward"):
                if key in summary:
                    tf.summary.scalar(f"controller/{key}", summary[key])

    def _summaries_trial(self, record: TrialRecord) -> None:
        import tensorflow as tf

        with self._summary_writer().as_default(step=record.trial_id):
            tf.summary.scalar("trial/reward", record.reward)
            tf.summary.scalar("trial/accuracy", record.accuracy)
            tf.summary.scalar("trial/latency_ms", record.latency_ms)
        self._summary_writer().flush()

    def _write_outputs(self, final: bool = False) -> list[dict[str, Any]]:
        from mnas.search.pareto import plot_pareto

        completed = self.completed()
        if completed and not final:
            self._summaries_trial(max(completed, key=lambda r: r.time))
        ranked = sorted(completed, key=lambda r: (-r.reward, r.trial_id))
        best = ranked[: self.config.top_k]
        keep = {r.tflite_path for r in best}
        for record in self.journal.latest().values():
            path = record.tflite_path or self._task(record)["tflite_path"]
            if record.finished and path not in keep and os.path.exists(path):
                os.remove(path)
        entries = [self._best_entry(rank, r) for rank, r in enumerate(best, 1)]
        write_json_atomic(
            self._path(BEST_FILE),
            {
                "search_space": self.space.identity(),
                "reward": dataclasses.asdict(self.config.reward),
                "num_completed": len(completed),
                "best": entries,
            },
        )
        plot_pareto(
            self._path(PARETO_FILE),
            [(r.latency_ms, r.accuracy) for r in completed],
            self.config.reward.target_ms,
            title=f"mnas search: {len(completed)} completed trials",
        )
        return entries

    def _best_entry(self, rank: int, record: TrialRecord) -> dict[str, Any]:
        spec: ArchSpec = self.space.decode(record.actions)
        return {
            "rank": rank,
            "trial_id": record.trial_id,
            "reward": record.reward,
            "accuracy": record.accuracy,
            "latency_ms": record.latency_ms,
            "latency_source": record.latency_source,
            "predicted_ms": record.predicted_ms,
            "measured_ms": record.measured_ms,
            "block_strings": list(spec.block_strings),
            "actions": list(record.actions),
            "arch": spec.to_dict(),
            "tflite": record.tflite_path,
        }

    def _progress_message(self, record: TrialRecord) -> str:
        if record.status == "COMPLETED":
            text = (
                f"trial {record.trial_id}: acc {record.accuracy:.3f} "
                f"lat {record.latency_ms:.2f} ms reward {record.reward:.4f}"
            )
        else:
            text = f"trial {record.trial_id}: FAILED"
        completed = self.completed()
        if completed:
            top = max(completed, key=lambda r: r.reward)
            text += (
                f" | best: trial {top.trial_id} reward {top.reward:.4f} "
                f"(acc {top.accuracy:.3f}, {top.latency_ms:.2f} ms)"
            )
        return text
