"""The oracle of a search: the controller plus the trial journal.

It decides what to evaluate next and learns from what was evaluated; the
journal and the controller checkpoint are its memory, written in an order that
makes a kill at any moment recoverable:

1. ``controller.propose()``; then the RUNNING record is appended. Nothing is
   checkpointed here: the policy only changes at an update, and proposals are
   seeded by (seed, proposal id, count), so the proposals made since the last
   checkpoint are sampled again, identically, on resume (``resume`` checks
   them against the journal's actions).
2. The COMPLETED/FAILED record is appended; then the reward is fed back; the
   checkpoint is saved when that reward completed every ``checkpoint_every``-th
   update (an update comes once per ``controller.batch_size`` rewards).
3. On resume the journal is replayed, in the order it was written, into the
   controller restored from its checkpoint: a proposal the checkpoint predates
   is sampled again when its first record comes (from the policy of that
   moment, so checked against the journal's actions), and a finished trial
   whose proposal is pending is fed back. Updates happen again where they
   happened, so no reward is lost or counted twice and the proposals after
   them come out the same: a checkpoint any number of updates old is enough.
4. RUNNING trials found on resume are re-run with the same actions and id.

Weight-sharing evaluation (``mnas.search.shared``) evaluates one proposal at a
time in this process and writes no RUNNING record: ``propose(count)`` samples
a batch and hands it out one at a time. Proposals of a batch the journal never
saw are handed out again first on resume (same ids, same actions).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from mnas.io.work_dir import remove_checkpoint_temps
from mnas.search.trial import Journal, JournalError, TrialRecord


@dataclasses.dataclass
class ResumePlan:
    """What a resumed search must do before proposing anything new."""

    finished: int = 0
    reruns: list[TrialRecord] = dataclasses.field(default_factory=list)
    orphans: list[Any] = dataclasses.field(default_factory=list)  # Proposals
    replayed: int = 0

    def describe(self) -> str | None:
        if not (self.reruns or self.orphans or self.replayed):
            return None
        return (
            f"resuming: {self.finished} trials finished, {len(self.reruns)} "
            f"interrupted trials to re-run, {self.replayed} rewards replayed, "
            f"{len(self.orphans)} unrecorded proposals"
        )


class Oracle:
    """Proposes trials (``next_trial``) and learns from them (``finish``).

    ``on_update(controller)`` is called after a reward completed a controller
    batch (for summaries).
    """

    def __init__(
        self,
        controller,
        journal: Journal,
        space,
        checkpoint_dir: str,
        on_update: Callable[[Any], None] | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        self.controller = controller
        self.journal = journal
        self.space = space
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self._on_update = on_update
        self._plan = ResumePlan()
        self._saved_updates = controller.num_updates

    @classmethod
    def restore(
        cls,
        controller,
        journal: Journal,
        space,
        checkpoint_dir: str,
        on_update: Callable[[Any], None] | None = None,
        checkpoint_every: int = 1,
    ) -> Oracle:
        """Restores the controller from its latest checkpoint, if any (after
        removing what a save cut short left behind)."""
        import tensorflow as tf

        os.makedirs(checkpoint_dir, exist_ok=True)
        remove_checkpoint_temps(checkpoint_dir)
        if tf.train.latest_checkpoint(checkpoint_dir):
            controller.restore(checkpoint_dir)
        return cls(
            controller, journal, space, checkpoint_dir, on_update, checkpoint_every
        )

    # -- recovery ------------------------------------------------------------------
    def resume(self, count: int = 1) -> ResumePlan:
        """Replays the journal into the controller (proposals sampled again in
        batches of ``count``, as they were made; rewards fed back in the order
        they came); returns what is left to do."""
        latest = self.journal.latest()
        recorded = {
            r.proposal_id: r for r in latest.values() if r.proposal_id is not None
        }
        plan = ResumePlan(finished=sum(r.finished for r in latest.values()))
        for record in self.journal.records:
            if record.proposal_id is None:
                continue
            self._sample_through(record.proposal_id, count, recorded)
            if record.finished and self._is_pending(record.proposal_id):
                self._feed(record)
                plan.replayed += 1
        plan.reruns = [r for r in latest.values() if r.status == "RUNNING"]
        plan.orphans = [
            p
            for p in self.controller.pending_proposals()
            if p.proposal_id not in recorded
        ]
        if plan.describe() is not None or self._behind():
            self.save()
        self._plan = plan
        return plan

    def _sample_through(
        self, proposal_id: int, count: int, recorded: dict[int, TrialRecord]
    ) -> None:
        """Samples again, from the policy of this point of the replay, the
        proposals up to ``proposal_id`` that the checkpoint predates; a
        differing one is refused."""
        while self.controller.num_proposed <= proposal_id:
            for proposal in self.controller.propose_batch(count):
                record = recorded.get(proposal.proposal_id)
                if record is not None and record.actions != proposal.actions:
                    raise JournalError(
                        f"{self.journal.path}: trial {record.trial_id} holds "
                        f"proposal {proposal.proposal_id} with other actions than "
                        "the controller samples again from its checkpoint (was "
                        "the controller's seed or config changed?)"
                    )

    def _is_pending(self, proposal_id: int | None) -> bool:
        """Whether the controller awaits feedback for ``proposal_id`` (never
        for a trial it did not propose, or one already fed back)."""
        return any(
            p.proposal_id == proposal_id for p in self.controller.pending_proposals()
        )

    def check_journal(self) -> None:
        """Refuses a journal whose actions this search space cannot decode."""
        for record in self.journal.latest().values():
            try:
                self.space.decode(record.actions)
            except ValueError as error:
                raise JournalError(
                    f"{self.journal.path}: trial {record.trial_id} holds actions "
                    f"search space {self.space.identity()} cannot decode ({error})"
                ) from None

    # -- proposing -----------------------------------------------------------------
    def propose(self, count: int = 1):
        """The next proposal the journal has not seen: an unrecorded one from
        before a kill, else one of ``count`` sampled at once (one graph call)."""
        plan = self._plan
        if not plan.orphans:
            plan.orphans = list(self.controller.propose_batch(count))
        return plan.orphans.pop(0)

    def has_unrecorded_proposals(self) -> bool:
        """Proposals the controller handed out that the journal has not seen."""
        return bool(self._plan.orphans)

    def next_trial(self) -> TrialRecord:
        """The next trial, recorded as RUNNING: an interrupted one again, an
        unrecorded proposal, or a new proposal."""
        plan = self._plan
        if plan.reruns:
            old = plan.reruns.pop(0)
            record = old.replace(status="RUNNING", attempt=old.attempt + 1, error=None)
        else:
            if plan.orphans:
                proposal = plan.orphans.pop(0)
            else:
                proposal = self.controller.propose()
            spec = self.space.decode(proposal.actions)
            record = TrialRecord(
                trial_id=self.journal.next_trial_id(),
                status="RUNNING",
                proposal_id=proposal.proposal_id,
                actions=proposal.actions,
                block_strings=spec.block_strings,
            )
        self.journal.append(record)
        return record

    # -- learning ------------------------------------------------------------------
    def finish(self, record: TrialRecord) -> bool:
        """Records a COMPLETED or FAILED trial, then feeds it back; saves the
        controller if its policy was updated. Returns whether it was."""
        if not record.finished:
            raise ValueError(
                f"trial {record.trial_id} is not finished: {record.status}"
            )
        self.journal.append(record)
        updated = self._is_pending(record.proposal_id) and self._feed(record)
        if updated and self.controller.num_updates % self.checkpoint_every == 0:
            self.save()
        return updated

    def amend(self, record: TrialRecord) -> None:
        """Appends a later state of a finished trial (a verification)."""
        self.journal.append(record)

    def _feed(self, record: TrialRecord) -> bool:
        """Feeds a finished trial whose proposal the controller awaits
        (``_is_pending``); returns whether the policy was updated."""
        if record.status == "COMPLETED":
            updated = self.controller.feedback(record.proposal_id, record.reward)
            if updated and self._on_update is not None:
                self._on_update(self.controller)
            return updated
        self.controller.feedback_failed(record.proposal_id, record.error or "")
        return False

    def save(self) -> None:
        self.controller.save(self.checkpoint_dir)
        self._saved_updates = self.controller.num_updates

    def save_if_behind(self) -> None:
        """Saves when updates happened since the last checkpoint (at the end
        of a search, so a resume has nothing to replay)."""
        if self._behind():
            self.save()

    def _behind(self) -> bool:
        return self.controller.num_updates != self._saved_updates

    # -- views ---------------------------------------------------------------------
    def latest(self) -> dict[int, TrialRecord]:
        return self.journal.latest()

    def completed(self) -> list[TrialRecord]:
        return [r for r in self.journal.latest().values() if r.status == "COMPLETED"]

    def num_finished(self) -> int:
        return sum(r.finished for r in self.journal.latest().values())
