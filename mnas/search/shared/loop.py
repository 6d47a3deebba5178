"""The search with weight-sharing evaluation (``SearchConfig.evaluation="shared"``).

TuNAS's loop on the MnasNet search's oracle, journal and outputs. For each of
``num_trials`` architectures (ids 0, 1, ... in order, one at a time):

1. **Sample.** During the RL delay (``SharedConfig.rl_delay``) the path is drawn
   uniformly from the space (seeded by the trial id) and the controller is not
   involved; after it, ``Oracle.propose`` hands out the controller's next
   proposal (a batch of ``controller.batch_size`` is sampled when the last
   one is used up).
2. **Latency.** The lookup-table prediction of the decoded architecture
   (missing entries are measured and appended to the table).
3. **Step.** ``SharedWeights.step``: a weight step of the (warm-up widened)
   path on one training batch, then the path's accuracy on one held-out batch.
4. **Record.** The COMPLETED trial (accuracy, predicted latency, reward, the
   step's loss and timings) is appended to ``trials.jsonl``; then the reward is
   fed to the controller, whose checkpoint is saved after every
   ``SearchConfig.checkpoint_every_updates``-th update and at the end (the
   only controller checkpoint: ``mnas.search.oracle``).
5. Every ``checkpoint_every`` architectures: the shared weights, their
   optimizer and the number of trials trained are checkpointed
   (``supernet/``). ``best.json`` and ``pareto.png`` are rewritten at most
   every ``outputs_interval_s`` seconds and at the end.

The sampling stops at ``num_trials`` architectures or, with
``time_budget_s``, when that many seconds of this run have passed.

Resume after a kill at any moment, without a duplicated or lost trial:

* the journal is the truth: a trial is done once its record is appended;
* the controller is restored from its checkpoint and the journal written
  since is replayed into it (``Oracle.resume``: proposals sampled again,
  rewards fed back, updates made again in the order they happened);
  proposals it holds that the journal never saw are handed out again first
  (same ids, same actions);
* the shared weights are restored from their checkpoint, which says up to
  which trial they were trained; the weight steps of the trials journaled
  after it are replayed in order (every draw of a step is a function of the
  seed and the trial id, so a replayed step is the step that was taken); a
  trial whose step ran but whose record was not written is simply run again.

At the end the distinct architectures of the last quarter with the best mean
reward (``SharedConfig.rescore`` of them, plus the controller's most likely
one) are scored again with the final weights on the whole held-out split; the
best ``top_k`` are recorded as ``verify`` trials (RUNNING, then evaluated
through the executor like standalone trials: proxy-trained alone, exported,
timed on the backend with ``--latency=verified``). ``best.json`` ranks them
by the reward of their standalone accuracy and measured latency. Interrupted
verifications are re-run on resume.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mnas.search.outputs import rank_trials, trial_entry, trial_model_name
from mnas.search.reward import compute_reward
from mnas.search.trial import TrialRecord
from mnas.search.workers.pool import Outcome

SHARED_PHASES = ("warmup", "search")


class _Ranking:
    """Completed trials best first, kept sorted as they arrive."""

    def __init__(self) -> None:
        self._keys: list[tuple[float, int]] = []
        self.records: list[TrialRecord] = []

    def add(self, record: TrialRecord) -> None:
        if record.status != "COMPLETED":
            return
        key = (-record.reward, record.trial_id)
        index = bisect.bisect(self._keys, key)
        self._keys.insert(index, key)
        self.records.insert(index, record)


class SharedEvaluation:
    """Runs the shared phase and the verification of one ``Search``."""

    def __init__(self, search, data=None) -> None:
        self.search = search
        self.config = search.config
        self.shared = search.config.shared
        self.space = search.space
        self.oracle = search.oracle
        self.journal = search.journal
        self.log = search.log
        if data is None:
            from mnas.train.data import load_proxy_data

            data = load_proxy_data(self.config.data)
        self.data = data
        self.predictor = search.scorer.predictor
        self.ranking = _Ranking()
        self.weights = None
        self.delay = self.shared.phase_steps(
            self.config.num_trials, self.shared.rl_delay
        )
        from mnas.search.runner import OutputsThrottle

        self.throttle = OutputsThrottle(self.config.outputs_interval_s)
        self.started = time.monotonic()

    # -- the whole run ------------------------------------------------------------
    def run(self, streak) -> list[dict[str, Any]]:
        from mnas.search.shared.weights import (
            SharedWeights,
            checkpoint_dir,
            no_graph_rewrites,
        )

        plan = self.oracle.resume(self.config.controller.batch_size)
        verify_reruns = [r for r in plan.reruns if r.phase == "verify"]
        plan.reruns[:] = [r for r in plan.reruns if r.phase != "verify"]
        message = plan.describe()
        if message is not None:
            self.log(message)
        for record in self._shared_records():
            self.ranking.add(record)
        finished = sum(r.finished for r in self._shared_records())
        for callback in self.search.callbacks:
            callback.on_search_begin(finished)
        with no_graph_rewrites():
            self.weights = SharedWeights(
                self.space,
                self.data,
                self.shared,
                self.config.num_trials,
                self.config.seed,
                checkpoint_dir(self.config.work_dir),
            )
            self._replay()
            next_id = self.journal.next_trial_id()
            # Once the verification has begun (a time budget ended the
            # sampling), a resume finishes it rather than sampling again.
            verifying = any(r.phase == "verify" for r in self.journal.latest().values())
            while (
                not verifying
                and finished < self.config.num_trials
                and not streak.tripped
                and not self._out_of_time()
            ):
                record = self._trial(next_id)
                next_id += 1
                finished += 1
                streak.add(record)
                self.ranking.add(record)
                for callback in self.search.callbacks:
                    callback.on_trial_end(record, self.ranking.records)
                if (record.trial_id + 1) % self.shared.checkpoint_every == 0:
                    self._checkpoint(record.trial_id + 1)
                if self.throttle.due():
                    self._write_outputs()
            if streak.tripped:
                return self._write_outputs()
            if self.weights.trained > self.weights.checkpointed:
                self._checkpoint(self.weights.trained)
            self._verify(verify_reruns)
        return self._write_outputs()

    def _out_of_time(self) -> bool:
        budget = self.config.time_budget_s
        if budget is None or time.monotonic() - self.started < budget:
            return False
        if not getattr(self, "_said_out_of_time", False):
            self._said_out_of_time = True
            done = self.journal.next_trial_id()
            said = f"time budget of {budget:g} s spent after {done} architectures"
            if done <= self.delay:
                said += (
                    f", before the controller's phase (from architecture "
                    f"{self.delay}, --rl_delay of --num_trials): set --num_trials "
                    "to what the budget fits"
                )
            self.log(said + ": sampling stops")
        return True

    def _shared_records(self) -> list[TrialRecord]:
        return [r for r in self.journal.latest().values() if r.phase in SHARED_PHASES]

    def _checkpoint(self, trained: int) -> None:
        self.weights.save(trained)

    # -- the shared phase ------------------------------------------------------------
    def _replay(self) -> None:
        """Weight steps of the trials journaled after the weights' checkpoint."""
        start = self.weights.trained
        todo = [
            r
            for r in self._shared_records()
            if r.status == "COMPLETED" and r.trial_id >= start
        ]
        if not todo:
            return
        began = time.perf_counter()
        for record in sorted(todo, key=lambda r: r.trial_id):
            self.weights.step(record.trial_id, record.actions, score=False)
        self.log(
            f"resuming: replayed the weight steps of {len(todo)} trials "
            f"({todo[0].trial_id}..{todo[-1].trial_id}) journaled after the "
            f"checkpoint, in {time.perf_counter() - began:.0f} s"
        )

    def _sample(self, trial_id: int) -> tuple[int | None, tuple[int, ...], str]:
        """(proposal id, actions, phase) of the next trial."""
        if trial_id < self.delay and not self.oracle.has_unrecorded_proposals():
            rng = np.random.default_rng([self.config.seed, trial_id, 4])
            return None, self.space.sample(rng), "warmup"
        proposal = self.oracle.propose(self.config.controller.batch_size)
        return proposal.proposal_id, proposal.actions, "search"

    def _trial(self, trial_id: int) -> TrialRecord:
        cpu = time.process_time()
        start = time.perf_counter()
        proposal_id, actions, phase = self._sample(trial_id)
        spec = self.space.decode(actions)
        record = TrialRecord(
            trial_id=trial_id,
            status="RUNNING",
            proposal_id=proposal_id,
            actions=actions,
            block_strings=spec.block_strings,
            phase=phase,
        )
        timings = {"sample_s": time.perf_counter() - start}
        start = time.perf_counter()
        try:
            latency_ms = float(
                self.predictor.predict(
                    spec,
                    resolution=self.config.deployment_resolution,
                    num_classes=self.data.num_classes,
                )
            )
        except Exception as error:  # noqa: BLE001 - fails only this trial
            return self._fail(record, f"latency prediction failed: {error}", timings)
        timings["latency_s"] = time.perf_counter() - start
        result = self.weights.step(trial_id, actions)
        timings.update(result.timings)
        if not result.finite:
            return self._fail(
                record, f"the weight step's loss is {result.loss}", timings
            )
        reward = compute_reward(result.accuracy, latency_ms, self.config.reward)
        completed = record.replace(
            status="COMPLETED",
            accuracy=result.accuracy,
            latency_ms=latency_ms,
            latency_source="predicted",
            predicted_ms=latency_ms,
            reward=reward,
            timings=timings,
            shared={
                "loss": result.loss,
                "train_accuracy": result.train_accuracy,
                "learning_rate": result.learning_rate,
                "widened_ops": result.widened_ops,
                "widened_widths": result.widened_widths,
            },
        )
        # This process's CPU seconds (all threads) for the trial: on a shared
        # machine the wall clock also counts other processes' turns.
        timings["cpu_s"] = time.process_time() - cpu
        start = time.perf_counter()
        self.oracle.finish(completed)
        timings["record_s"] = time.perf_counter() - start  # in memory only
        return completed

    def _fail(self, record: TrialRecord, error: str, timings) -> TrialRecord:
        failed = record.replace(status="FAILED", error=error, timings=timings)
        self.oracle.finish(failed)
        self.log(f"trial {record.trial_id} FAILED: {error.splitlines()[0]}")
        return failed

    # -- verification ---------------------------------------------------------------
    def select(self) -> list[tuple[TrialRecord, float, float]]:
        """The ``top_k`` architectures to verify: (a trial of it, its accuracy
        under the final weights on the whole held-out split, its reward)."""
        completed = [r for r in self._shared_records() if r.status == "COMPLETED"]
        tail = [r for r in completed if r.trial_id >= 0.75 * self.config.num_trials]
        groups: dict[Any, list[TrialRecord]] = {}
        for record in tail or completed:
            groups.setdefault(self.space.decode(record.actions), []).append(record)
        ranked = sorted(
            groups.values(),
            key=lambda rs: (-float(np.mean([r.reward for r in rs])), rs[-1].trial_id),
        )
        chosen = [rs[-1] for rs in ranked[: self.shared.rescore]]
        favourite = self._most_likely(
            completed, {self.space.decode(r.actions) for r in chosen}
        )
        if favourite is not None:
            chosen.append(favourite)
        scored = []
        for record in chosen:
            accuracy = self.weights.score(record.actions)
            reward = compute_reward(accuracy, record.predicted_ms, self.config.reward)
            scored.append((record, accuracy, reward))
        scored.sort(key=lambda item: (-item[2], item[0].trial_id))
        return scored[: self.config.top_k]

    def _most_likely(self, completed, seen) -> TrialRecord | None:
        """A trial of the controller's most likely architecture (TuNAS's final
        answer), when it has one, it was sampled and is not chosen already."""
        most_likely = getattr(self.oracle.controller, "most_likely_actions", None)
        if most_likely is None:
            return None
        spec = self.space.decode(most_likely())
        if spec in seen:
            return None
        matches = [r for r in completed if self.space.decode(r.actions) == spec]
        return matches[-1] if matches else None

    def _verify(self, reruns: Sequence[TrialRecord]) -> None:
        records = [r for r in self.journal.latest().values() if r.phase == "verify"]
        if not records:
            started = time.perf_counter()
            for trial, accuracy, _ in self.select():
                record = TrialRecord(
                    trial_id=self.journal.next_trial_id(),
                    status="RUNNING",
                    proposal_id=None,
                    actions=trial.actions,
                    block_strings=trial.block_strings,
                    phase="verify",
                    verifies=trial.trial_id,
                    shared_accuracy=accuracy,
                    predicted_ms=trial.predicted_ms,
                )
                self.oracle.amend(record)
                records.append(record)
            self.log(
                f"verifying the best {len(records)} architectures standalone "
                f"(chosen in {time.perf_counter() - started:.0f} s: "
                + ", ".join(
                    f"trial {r.verifies} shared acc {r.shared_accuracy:.3f} "
                    f"{r.predicted_ms:.2f} ms"
                    for r in records
                )
                + ")"
            )
        todo = [
            r.replace(attempt=r.attempt + 1) if r in reruns else r
            for r in records
            if r.status == "RUNNING"
        ]
        pool, in_flight = self.search.pool, {}
        while todo or in_flight:
            while todo and pool.free_slots() > 0:
                record = todo.pop(0)
                pool.submit(record.trial_id, self.search._task(record))
                in_flight[record.trial_id] = record
            for outcome in pool.poll(1.0):
                self._finish_verify(in_flight.pop(outcome.trial_id), outcome)

    def _finish_verify(self, record: TrialRecord, outcome: Outcome) -> TrialRecord:
        if outcome.node is not None:  # the Ray node that trained it
            record = record.replace(node=outcome.node)
        if not outcome.ok:
            return self._fail(record, outcome.error or "unknown error", {})
        result = outcome.result
        timings = dict(result.get("timings", {}))
        accuracy = float(result["accuracy"])
        latency_ms, measured_ms = record.predicted_ms, None
        if self.config.latency_mode == "verified":
            measured = self.search.scorer.measure(result["tflite_path"])
            timings["latency_s"] = measured.seconds
            if measured.error is not None:
                return self._fail(
                    record, f"latency measurement failed: {measured.error}", timings
                )
            latency_ms = measured_ms = float(measured.result.median_ms)
        if not (math.isfinite(accuracy) and latency_ms and latency_ms > 0):
            return self._fail(
                record, f"invalid result: accuracy={accuracy}, {latency_ms} ms", timings
            )
        completed = record.replace(
            status="COMPLETED",
            accuracy=accuracy,
            latency_ms=latency_ms,
            latency_source="measured" if measured_ms is not None else "predicted",
            measured_ms=measured_ms,
            reward=compute_reward(accuracy, latency_ms, self.config.reward),
            timings=timings,
            tflite_path=result.get("tflite_path"),
        )
        self.oracle.finish(completed)
        self.log(
            f"trial {record.trial_id} (verifies {record.verifies}): standalone acc "
            f"{accuracy:.3f} (shared {record.shared_accuracy:.3f}), "
            f"{latency_ms:.2f} ms {completed.latency_source} "
            f"(predicted {record.predicted_ms:.2f}), reward {completed.reward:.4f}"
        )
        return completed

    # -- outputs ----------------------------------------------------------------------
    def _write_outputs(self) -> list[dict[str, Any]]:
        """``best.json``: the verified architectures once there are any, else
        the best shared trials so far; ``pareto.png``: every shared trial
        (predicted latency, shared accuracy), the verified ones marked."""
        latest = self.journal.latest().values()
        verified = rank_trials(r for r in latest if r.phase == "verify")
        best = verified or self.ranking.records
        outputs = self.search.outputs
        entries = []
        for rank, record in enumerate(best[: self.config.top_k], 1):
            path = None
            if record.phase == "verify":
                path = outputs.model_path(trial_model_name(record.trial_id))
            entry = trial_entry(rank, record, self.space.decode(record.actions), path)
            entry.update(
                phase=record.phase,
                verifies=record.verifies,
                shared_accuracy=record.shared_accuracy,
            )
            entries.append(entry)
        outputs.write_best(
            {
                "search_space": self.space.identity(),
                "reward": dataclasses.asdict(self.config.reward),
                "evaluation": "shared",
                "verified": bool(verified),
            },
            len(self.ranking.records),
            entries,
        )
        outputs.plot_pareto(
            [(r.latency_ms, r.accuracy) for r in self.ranking.records],
            self.config.reward.target_ms,
            title=(
                f"mnas search (shared weights): {len(self.ranking.records)} "
                "architectures"
            ),
            verified=[(r.latency_ms, r.accuracy) for r in verified],
        )
        self.throttle.wrote()
        return entries
