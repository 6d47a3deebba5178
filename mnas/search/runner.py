"""The MnasNet search loop: propose -> decode -> evaluate -> measure -> reward.

Only this package (and the binaries) join the layers: the controller sees
decisions, the builder sees an ``ArchSpec``, the latency backends see
``.tflite`` files. ``Search`` wires four roles together:

* the **oracle** (``mnas.search.oracle``): controller + trial journal; it
  proposes, learns from results, and recovers by replaying the journal;
* the **runner**: an ``Executor`` of candidate evaluations
  (``mnas.search.workers.pool``) and the latency scorer
  (``mnas.search.scoring``: measured, predicted, verified top-k);
* the **display** (``mnas.search.display``): the progress line;
* the **outputs** (``mnas.search.outputs``): ``best.json``, ``pareto.png``,
  the kept ``.tflite`` models; plus TensorBoard summaries. Display, outputs and
  summaries are callbacks (``mnas.search.callbacks``).

Durability. Everything lives in the work directory, locked for the run:
``config.json``, the append-only ``trials.jsonl``, the controller checkpoint,
TensorBoard summaries, ``best.json``, ``pareto.png`` (rewritten at most every
``outputs_interval_s`` and at the end) and the best models as ``.tflite``.
The order of writes makes a kill at any moment recoverable:

1. ``controller.propose()``; then the RUNNING record is appended.
2. The COMPLETED/FAILED record is appended; then the reward is fed back; the
   controller checkpoint is saved when that reward completed an update. On
   resume the controller samples the proposals made since its checkpoint
   again (seeded, so identical; checked against the journal) and finished
   trials whose proposal it holds as pending are fed back again (replay), so
   no reward is lost or counted twice.
3. RUNNING trials found on resume are re-run with the same actions and id.

An interruption (Ctrl-C, or SIGTERM, which the binaries turn into a
``KeyboardInterrupt``) stops the executor's running evaluations, names the
trials it cut short, writes the outputs and unlocks the work directory; those
trials stay RUNNING, as after a kill.

Latency modes (``latency_mode``): ``measured`` times every exported model on
the backend; ``predicted`` scores with the lookup-table predictor and times
nothing; ``verified`` scores with the predictor and also times each trial
that enters the top-k, appending a record with both numbers (the reward stays
the predicted one, so the controller sees one consistent signal).

A search whose last ``max_consecutive_failures`` trials all failed stops with
``ConsecutiveFailuresError`` (a dead backend would fail every trial); its
unfinished trials stay RUNNING and are re-run by a resume.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from mnas.io.work_dir import claim_work_dir
from mnas.search.callbacks import Callback, TensorBoardLogger
from mnas.search.config import (
    JOURNAL_FILE,
    LATENCY_MODES,
    RESUMABLE_FIELDS,
    SearchConfig,
    SearchConfigError,
    search_claim,
)
from mnas.search.display import SearchDisplay, SharedDisplay
from mnas.search.oracle import Oracle
from mnas.search.outputs import (
    Outputs,
    rank_trials,
    trial_entry,
    trial_model_name,
)
from mnas.search.reward import compute_reward
from mnas.search.scoring import Backend, Latency, LatencyScorer
from mnas.search.trial import Journal, TrialRecord
from mnas.search.workers.pool import Executor, Outcome
from mnas.search_space import get_search_space

CONTROLLER_DIR = "controller"
TENSORBOARD_DIR = "tensorboard"
WORKER_LOG_DIR = "workers"

__all__ = [
    "LATENCY_MODES",
    "RESUMABLE_FIELDS",
    "ConsecutiveFailuresError",
    "Search",
    "SearchConfig",
    "SearchConfigError",
]


class SearchStoppedError(RuntimeError):
    """The search stopped before its budget was spent."""


class ConsecutiveFailuresError(SearchStoppedError):
    """The last ``max_consecutive_failures`` trials all failed."""

    def __init__(self, trial_ids: Sequence[int], errors: Sequence[str]) -> None:
        self.trial_ids = tuple(trial_ids)
        self.common_error = common_error(errors)
        super().__init__(
            f"stopped after {len(self.trial_ids)} consecutive failed trials "
            f"({', '.join(str(t) for t in self.trial_ids)}); their common error: "
            f"{self.common_error}"
        )


def common_error(errors: Sequence[str]) -> str:
    """The first line most of ``errors`` share (trial numbers masked)."""
    lines = [
        re.sub(r"\btrial \d+", "trial N", (e or "unknown error").splitlines()[0])
        for e in errors
    ]
    line, count = Counter(lines).most_common(1)[0]
    if count == len(lines):
        return line
    return f"{line} (in {count} of {len(lines)}; the others differ)"


class _FailureStreak:
    """Failed trials in a row, in the order they finished."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.records: list[TrialRecord] = []

    def add(self, record: TrialRecord) -> None:
        if record.status == "FAILED":
            self.records.append(record)
        else:
            self.records.clear()

    @property
    def tripped(self) -> bool:
        return self.limit is not None and len(self.records) >= self.limit

    def error(self) -> ConsecutiveFailuresError:
        return ConsecutiveFailuresError(
            [r.trial_id for r in self.records], [r.error or "" for r in self.records]
        )


class OutputsThrottle:
    """Says when the outputs are due: at the first trial, then at most every
    ``interval_s`` seconds (0: every time). They are derived from the journal,
    so skipping a write loses nothing; the search writes them at its end."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self.clock = clock
        self._last: float | None = None

    def due(self) -> bool:
        return self._last is None or self.clock() - self._last >= self.interval_s

    def wrote(self) -> None:
        self._last = self.clock()


class SearchOutputs(Callback):
    """``best.json``, ``pareto.png`` and the top-k models: after a trial when
    ``config.outputs_interval_s`` has passed since the last write, and at the
    end (``write``)."""

    def __init__(self, outputs: Outputs, config: SearchConfig, space, journal) -> None:
        self.outputs = outputs
        self.config = config
        self.space = space
        self.journal = journal
        self.throttle = OutputsThrottle(config.outputs_interval_s)

    def on_trial_end(self, record: TrialRecord, ranked: Sequence[TrialRecord]) -> None:
        if self.throttle.due():
            self.write(ranked)

    def write(self, ranked: Sequence[TrialRecord]) -> list[dict[str, Any]]:
        best = list(ranked[: self.config.top_k])
        keep = {trial_model_name(r.trial_id) for r in best}
        finished = [
            trial_model_name(r.trial_id)
            for r in self.journal.latest().values()
            if r.finished
        ]
        self.outputs.prune_models(finished, keep)
        entries = [
            trial_entry(
                rank,
                r,
                self.space.decode(r.actions),
                self.outputs.model_path(trial_model_name(r.trial_id)),
            )
            for rank, r in enumerate(best, 1)
        ]
        self.outputs.write_best(
            {
                "search_space": self.space.identity(),
                "reward": dataclasses.asdict(self.config.reward),
            },
            len(ranked),
            entries,
        )
        self.outputs.plot_pareto(
            [(r.latency_ms, r.accuracy) for r in ranked],
            self.config.reward.target_ms,
            title=f"mnas search: {len(ranked)} completed trials",
        )
        self.throttle.wrote()
        return entries


class Search:
    """One search in one work directory. ``run()`` returns the best trials.

    ``pool`` is the ``Executor`` of candidate evaluations; ``backend`` times
    models (``measured``/``verified``), ``predictor`` predicts
    (``predicted``/``verified``). ``space`` overrides the registered space of
    ``config.space`` (tests search tiny spaces); ``data`` is the proxy data a
    shared search trains on (loaded from ``config.data`` when None) and
    ``lut_fill`` its table's fill (``open_shared_predictor``) for the progress
    line. The work directory stays locked from here until ``run()`` ends (or
    ``close()``).
    """

    def __init__(
        self,
        config: SearchConfig,
        pool: Executor,
        backend: Backend,
        resume: bool = False,
        controller_factory: Callable[..., Any] | None = None,
        log: Callable[[str], None] = print,
        progress_stream: TextIO | None = None,
        predictor=None,
        callbacks: Sequence[Callback] = (),
        data=None,
        lut_fill=None,
        space=None,
    ):
        self.config = config
        self.pool = pool
        self.data = data  # the proxy data, for shared evaluation (else loaded)
        if config.latency_mode != "measured" and predictor is None:
            raise SearchConfigError(
                f"latency mode {config.latency_mode!r} needs a latency predictor"
            )
        self.log = log
        self.space = space if space is not None else get_search_space(config.space)
        if self.space.name != config.space:
            raise SearchConfigError(
                f"search space {self.space.name!r} given for config.space "
                f"{config.space!r}"
            )
        self.work_dir = claim_work_dir(**search_claim(config, resume))
        try:
            self.journal = Journal.open(self.work_dir.file(JOURNAL_FILE))
            for note in self.journal.recovery_notes:
                self.log(f"journal recovery: {note}")
            self.outputs = Outputs(config.work_dir)
            self.tensorboard = TensorBoardLogger(self.work_dir.file(TENSORBOARD_DIR))
            self.oracle = Oracle.restore(
                self._make_controller(controller_factory),
                self.journal,
                self.space,
                self.work_dir.file(CONTROLLER_DIR),
                on_update=self._controller_updated,
                checkpoint_every=config.checkpoint_every_updates,
            )
            self.oracle.check_journal()
        except BaseException:
            self.work_dir.release()
            raise
        self.scorer = LatencyScorer(
            config.latency_mode,
            backend,
            predictor,
            config.deployment_resolution,
            remeasures=config.latency.remeasures if config.latency.adaptive else 0,
            require_ratio=config.reward.target_ratio is not None,
            log=self.log,
        )
        self.search_outputs = SearchOutputs(
            self.outputs, config, self.space, self.journal
        )
        if config.evaluation == "shared":
            note = None
            if lut_fill is not None and predictor is not None:
                note = lambda: lut_fill.note(predictor)  # noqa: E731
            self.callbacks: list[Callback] = [
                self.tensorboard,
                SharedDisplay(config.num_trials, progress_stream, note=note),
                *callbacks,
            ]
        else:
            self.callbacks = [
                self.search_outputs,
                self.tensorboard,
                SearchDisplay(config.num_trials, progress_stream),
                *callbacks,
            ]

    # -- setup -----------------------------------------------------------------
    @property
    def controller(self):
        return self.oracle.controller

    @property
    def backend(self) -> Backend:
        return self.scorer.backend

    def _make_controller(self, factory):
        from mnas.controller import make_controller

        factory = factory or make_controller
        return factory(
            self.config.controller_kind, self.space.decisions(), self.config.controller
        )

    def _controller_updated(self, controller) -> None:
        for callback in getattr(self, "callbacks", ()):
            callback.on_controller_update(controller)

    def close(self) -> None:
        """Stops the executor and unlocks the work directory (``run`` does it)."""
        try:
            self.pool.close()
        finally:
            self.work_dir.release()

    def __enter__(self) -> Search:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the loop ----------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Runs the search to ``num_trials`` finished trials; returns the
        ``best.json`` entries. Raises ``ConsecutiveFailuresError`` (after
        writing the outputs) when too many trials fail in a row."""
        streak = _FailureStreak(self.config.max_consecutive_failures)
        if self.config.evaluation == "shared":
            return self._run_shared(streak)
        in_flight: dict[int, TrialRecord] = {}
        try:
            plan = self.oracle.resume()
            message = plan.describe()
            if message is not None:
                self.log(message)
            for callback in self.callbacks:
                callback.on_search_begin(plan.finished)
            finished = plan.finished
            while finished < self.config.num_trials and not streak.tripped:
                while (
                    self.pool.free_slots() > 0
                    and finished + len(in_flight) < self.config.num_trials
                ):
                    record = self.oracle.next_trial()
                    self.pool.submit(record.trial_id, self._task(record))
                    in_flight[record.trial_id] = record
                    for callback in self.callbacks:
                        callback.on_trial_begin(record)
                outcomes = self.pool.poll(1.0)
                settled = self.scorer.settle(  # unstable latencies wait: scoring.py
                    outcomes,
                    {
                        o.trial_id: self.space.decode(in_flight[o.trial_id].actions)
                        for o in outcomes
                    },
                    in_flight,
                )
                for outcome, latency in settled:
                    record = in_flight.pop(outcome.trial_id)
                    record = self._finish(record, outcome, latency)
                    finished += 1
                    streak.add(record)
                    ranked = rank_trials(self.oracle.latest().values())
                    for callback in self.callbacks:
                        callback.on_trial_end(record, ranked)
            self.oracle.save_if_behind()
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM through the binary's rule
            self._interrupted(in_flight)
            raise
        finally:
            self._close()
        best = self.search_outputs.write(rank_trials(self.oracle.latest().values()))
        if streak.tripped:
            raise streak.error()
        return best

    def _close(self) -> None:
        """Stops the executor, tells the callbacks, and releases the work
        directory even if one of them fails (both evaluation modes)."""
        try:
            self.pool.close()
            for callback in self.callbacks:
                callback.on_search_end(rank_trials(self.oracle.latest().values()))
        finally:
            self.work_dir.release()

    def _run_shared(self, streak: _FailureStreak) -> list[dict[str, Any]]:
        """Weight-sharing evaluation (``mnas.search.shared.loop``)."""
        from mnas.search.shared.loop import SharedEvaluation

        try:
            best = SharedEvaluation(self, self.data).run(streak)
            self.oracle.save_if_behind()
        finally:
            self._close()
        if streak.tripped:
            raise streak.error()
        return best

    def _interrupted(self, in_flight: dict[int, TrialRecord]) -> None:
        """Says which trials the interruption cut short. Their RUNNING records
        stay the last word in the journal, so a resume re-runs them."""
        if not in_flight:
            return
        ids = ", ".join(str(trial_id) for trial_id in sorted(in_flight))
        if len(in_flight) == 1:
            said = f"trial {ids} stays RUNNING in the journal; a resume re-runs it"
        else:
            said = f"trials {ids} stay RUNNING in the journal; a resume re-runs them"
        self.log(f"interrupted: {said}")

    def _task(self, record: TrialRecord) -> dict[str, Any]:
        spec = self.space.decode(record.actions)
        return {
            "trial_id": record.trial_id,
            "arch": spec.to_dict(),
            "data": dataclasses.asdict(self.config.data),
            "trainer": dataclasses.asdict(self.config.trainer),
            "deployment_resolution": self.config.deployment_resolution,
            "tflite_path": self.outputs.model_path(trial_model_name(record.trial_id)),
            "seed": self.config.seed + record.trial_id,
        }

    def _finish(
        self, record: TrialRecord, outcome: Outcome, latency: Latency | None
    ) -> TrialRecord:
        if outcome.node is not None:
            record = record.replace(node=outcome.node)
        if not outcome.ok:
            return self._fail(record, outcome.error or "unknown error")
        result = outcome.result
        timings = dict(result.get("timings", {}))
        timings["latency_s"] = latency.seconds
        if latency.error is not None:
            return self._fail(
                record, f"latency measurement failed: {latency.error}", timings
            )
        latency_ms = float(latency.result.median_ms)
        accuracy = float(result["accuracy"])
        if not (
            math.isfinite(accuracy) and math.isfinite(latency_ms) and latency_ms > 0
        ):
            return self._fail(
                record,
                f"invalid measurement: accuracy={accuracy}, latency={latency_ms} ms",
                timings,
            )
        reward = compute_reward(
            accuracy, latency_ms, self.config.reward, ratio=latency.ratio
        )
        predicted = self.scorer.predicted
        measured = latency.result
        completed = record.replace(
            status="COMPLETED",
            accuracy=accuracy,
            latency_ms=latency_ms,
            latency=measured.to_dict() if hasattr(measured, "to_dict") else None,
            latency_source="predicted" if predicted else "measured",
            predicted_ms=latency_ms if predicted else None,
            measured_ms=None if predicted else latency_ms,
            reward=reward,
            timings=timings,
            tflite_path=result.get("tflite_path"),  # none from a one-shot evaluator
        )
        self.oracle.finish(completed)
        if self.config.latency_mode == "verified":
            completed = self._verify_top_k(completed)
        return completed

    def _verify_top_k(self, record: TrialRecord) -> TrialRecord:
        """Times every top-k trial still lacking a measurement; returns ``record``
        as last written. A failed timing is logged and leaves the trial as it was."""
        import os

        latest = record
        for top in rank_trials(self.oracle.latest().values())[: self.config.top_k]:
            if top.measured_ms is not None:
                continue
            path = self.outputs.model_path(trial_model_name(top.trial_id))
            if not os.path.exists(path):
                continue
            measured = self.scorer.measure(path)
            if measured.error is not None:
                self.log(f"trial {top.trial_id}: verification failed: {measured.error}")
                continue
            verified = dataclasses.replace(
                top, measured_ms=float(measured.result.median_ms)
            )
            self.oracle.amend(verified)
            self.log(
                f"trial {top.trial_id} verified: predicted {top.predicted_ms:.2f} ms, "
                f"measured {verified.measured_ms:.2f} ms"
            )
            if top.trial_id == record.trial_id:
                latest = verified
        return latest

    def _fail(self, record: TrialRecord, error: str, timings=None) -> TrialRecord:
        failed = record.replace(status="FAILED", error=error, timings=timings or {})
        self.oracle.finish(failed)
        self.log(f"trial {record.trial_id} FAILED: {error.splitlines()[0]}")
        return failed

    # -- views -------------------------------------------------------------------
    def completed(self) -> list[TrialRecord]:
        return self.oracle.completed()
