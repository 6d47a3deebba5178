"""Bookkeeping shared by all controllers: ids, batching, failures, bad input."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from mnas.controller import (
    CheckpointMismatchError,
    ControllerConfig,
    DuplicateFeedbackError,
    FeedbackError,
    InvalidRewardError,
    Proposal,
    UnknownProposalError,
)
from mnas.controller.base import Controller
from mnas.search_space.decision import Decision

DECISIONS = (
    Decision("block0/kernel", "kernel", ("3", "5")),
    Decision("block0/skip", "skip", ("none", "id", "pool")),
)


class RecordingController(Controller):
    """Deterministic stand-in that records every batch the learner sees."""

    kind = "recording"

    def __init__(self, decisions=DECISIONS, config=None):
        super().__init__(decisions, config or ControllerConfig(batch_size=3))
        self.batches: list[list[tuple[int, float]]] = []

    def _sample(self, first_id: int, count: int):
        return [
            ([i % d.num_choices for d in self.decisions], -1.5)
            for i in range(first_id, first_id + count)
        ]

    def _update(self, batch: Sequence[tuple[Proposal, float]]) -> dict[str, float]:
        self.batches.append([(p.proposal_id, r) for p, r in batch])
        return {"mean_reward": float(np.mean([r for _, r in batch]))}

    def log_prob(self, actions: Sequence[int]) -> float:
        self._check_actions(actions)
        return -1.5


def test_proposals_get_increasing_ids_and_are_pending():
    controller = RecordingController()
    proposals = [controller.propose() for _ in range(4)]
    assert [p.proposal_id for p in proposals] == [0, 1, 2, 3]
    assert proposals[3].actions == (1, 0)
    assert proposals[0].policy_version == 0
    assert controller.num_pending == 4
    assert controller.pending_proposals() == tuple(proposals)


def test_propose_batch_hands_out_consecutive_pending_ids():
    controller = RecordingController()
    controller.propose()
    batch = controller.propose_batch(3)
    assert [p.proposal_id for p in batch] == [1, 2, 3]
    assert [p.actions for p in batch] == [(1, 1), (0, 2), (1, 0)]
    assert controller.num_pending == 4
    with pytest.raises(ValueError, match="count must be >= 1"):
        controller.propose_batch(0)


def test_update_happens_on_full_batch_in_arrival_order():
    controller = RecordingController()
    for _ in range(7):
        controller.propose()
    # Out-of-order arrival, as with parallel workers.
    results = [controller.feedback(i, 0.1 * i) for i in (2, 0, 5)]
    assert results == [False, False, True]
    assert controller.num_updates == 1
    assert controller.batches == [[(2, 0.2), (0, 0.0), (5, 0.5)]]
    assert controller.state_summary()["mean_reward"] == pytest.approx(7 / 30)
    assert controller.propose().policy_version == 1
    assert {p.proposal_id for p in controller.pending_proposals()} == {1, 3, 4, 6, 7}


def test_failed_proposals_never_reach_the_learner_and_batch_refills():
    controller = RecordingController()
    for _ in range(6):
        controller.propose()
    controller.feedback(0, 1.0)
    controller.feedback_failed(1, reason="diverged")
    controller.feedback(2, 0.5)
    controller.feedback_failed(3)
    assert controller.num_updates == 0  # two rewards so far, batch is three
    assert controller.feedback(4, 0.25)
    assert controller.batches == [[(0, 1.0), (2, 0.5), (4, 0.25)]]
    summary = controller.state_summary()
    assert summary["num_failed"] == 2
    assert summary["num_rewards"] == 3
    with pytest.raises(DuplicateFeedbackError):
        controller.feedback(1, 0.3)  # a failed trial cannot turn into a reward


def test_unknown_id_is_a_clear_error():
    controller = RecordingController()
    controller.propose()
    with pytest.raises(UnknownProposalError, match="never proposed"):
        controller.feedback(7, 0.5)
    with pytest.raises(UnknownProposalError, match="never proposed"):
        controller.feedback(-1, 0.5)
    with pytest.raises(UnknownProposalError, match="never proposed"):
        controller.feedback_failed(3)
    with pytest.raises(UnknownProposalError, match="must be an int"):
        controller.feedback("0", 0.5)
    with pytest.raises(UnknownProposalError, match="must be an int"):
        controller.feedback(True, 0.5)
    assert controller.num_pending == 1


def test_duplicate_feedback_is_a_clear_error():
    controller = RecordingController()
    controller.propose()
    controller.feedback(0, 0.5)
    with pytest.raises(DuplicateFeedbackError, match="already received"):
        controller.feedback(0, 0.5)
    with pytest.raises(DuplicateFeedbackError):
        controller.feedback_failed(0)


@pytest.mark.parametrize("reward", [math.nan, math.inf, -math.inf, "0.5", None, True])
def test_invalid_reward_is_rejected_and_state_unchanged(reward):
    controller = RecordingController()
    controller.propose()
    with pytest.raises(InvalidRewardError):
        controller.feedback(0, reward)
    assert controller.num_pending == 1
    # The proposal is still pending and can be reported properly afterwards.
    controller.feedback_failed(0)
    assert controller.state_summary()["num_failed"] == 1


def test_every_feedback_refusal_is_caught_as_one_feedback_value_error():
    """A search catches bad feedback with one clause (FeedbackError, a
    ValueError), whichever of the three refusals it is."""
    controller = RecordingController()
    controller.propose()
    controller.propose()
    controller.feedback(0, 0.5)
    refusals = {
        UnknownProposalError: lambda: controller.feedback(9, 0.5),
        DuplicateFeedbackError: lambda: controller.feedback(0, 0.5),
        InvalidRewardError: lambda: controller.feedback(1, math.nan),
    }
    for kind, refused in refusals.items():
        with pytest.raises(FeedbackError) as info:
            refused()
        assert type(info.value) is kind
        assert isinstance(info.value, ValueError)
    assert controller.num_pending == 1  # nothing refused changed the state


def test_numpy_scalars_are_accepted():
    controller = RecordingController()
    controller.propose()
    controller.feedback(np.int64(0), np.float32(0.25))
    assert controller.state_summary()["num_rewards"] == 1


def test_bad_decisions_and_actions_are_rejected():
    with pytest.raises(ValueError, match="at least one decision"):
        RecordingController(decisions=())
    with pytest.raises(ValueError, match="duplicate decision name"):
        RecordingController(decisions=(DECISIONS[0], DECISIONS[0]))
    with pytest.raises(ValueError, match="no choices"):
        RecordingController(decisions=(Decision("a", "k", ()),))
    with pytest.raises(TypeError, match="not a Decision"):
        RecordingController(decisions=("block0/kernel",))
    controller = RecordingController()
    with pytest.raises(ValueError, match="expected 2 actions"):
        controller.log_prob([0])
    with pytest.raises(ValueError, match="out of range"):
        controller.log_prob([0, 3])
    # Two bytes would pass as two in-range actions if iterated.
    with pytest.raises(ValueError) as info:
        controller.log_prob(b"\x00\x01")
    assert str(info.value) == "actions must be a sequence of integers, got bytes"


def test_save_restore_keeps_pending_buffer_and_counters(tmp_path):
    controller = RecordingController()
    for _ in range(8):
        controller.propose()
    for i in (0, 1, 2, 3):
        controller.feedback(i, i / 10)
    controller.feedback_failed(4)
    controller.save(tmp_path)

    resumed = RecordingController()
    resumed.restore(tmp_path)
    assert resumed.num_updates == 1
    assert resumed.pending_proposals() == controller.pending_proposals()
    assert resumed.state_summary() == controller.state_summary()
    assert resumed.propose() == controller.propose()
    # The buffered reward of proposal 3 is part of the next batch.
    resumed.feedback(5, 0.5)
    resumed.feedback(6, 0.6)
    assert resumed.batches == [[(3, 0.3), (5, 0.5), (6, 0.6)]]
    with pytest.raises(DuplicateFeedbackError):
        resumed.feedback(4, 0.1)


def test_restore_refuses_a_different_controller(tmp_path):
    controller = RecordingController()
    controller.propose()
    controller.save(tmp_path / "a")
    other = RecordingController(config=ControllerConfig(batch_size=5))
    with pytest.raises(CheckpointMismatchError, match="config.batch_size: 3 != 5"):
        other.restore(tmp_path / "a")
    other = RecordingController(decisions=DECISIONS[:1])
    with pytest.raises(CheckpointMismatchError, match="decisions differ"):
        other.restore(tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="no controller checkpoint"):
        controller.restore(tmp_path / "missing")


def test_latest_checkpoint_wins_and_old_ones_are_pruned(tmp_path):
    controller = RecordingController()
    for _ in range(4):
        controller.propose()
        prefix = controller.save(tmp_path)
    resumed = RecordingController()
    assert resumed.restore(tmp_path) == prefix
    assert resumed.propose().proposal_id == 4
    assert len(list(tmp_path.glob("*.index"))) == 2
