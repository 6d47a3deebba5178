"""LSTM controller: learning a known reward, reproducibility, exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnas.controller import (
    CheckpointMismatchError,
    ControllerConfig,
    InvalidRewardError,
    LSTMController,
    make_controller,
)
from mnas.search_space.decision import Decision
from mnas.testing.controller import (
    chance_reward,
    hidden_target,
    match_reward,
    mnas_decisions,
    run_search,
)

DECISIONS = mnas_decisions()
TARGET = hidden_target(DECISIONS)
CHANCE = chance_reward(DECISIONS)
MAX_UPDATES = 300


def _config(**changes) -> ControllerConfig:
    """The defaults (batch 8, per-algorithm learning rate and entropy weight)."""
    return ControllerConfig(**changes)


def test_policy_starts_near_uniform():
    controller = LSTMController(DECISIONS, _config())
    actions = controller.propose().actions
    uniform = -sum(math.log(d.num_choices) for d in DECISIONS)
    assert controller.log_prob(actions) == pytest.approx(uniform, abs=0.5)
    assert controller.entropy(actions) == pytest.approx(-uniform, abs=0.5)
    assert len(controller.most_likely_actions()) == len(DECISIONS)


def test_proposal_log_prob_matches_policy():
    controller = LSTMController(DECISIONS, _config())
    proposals = (controller.propose(), *controller.propose_batch(3))
    assert [p.proposal_id for p in proposals] == [0, 1, 2, 3]
    assert len({p.actions for p in proposals}) == 4
    for proposal in proposals:
        assert all(0 <= a < d.num_choices for a, d in zip(proposal.actions, DECISIONS))
        assert proposal.log_prob == pytest.approx(
            controller.log_prob(proposal.actions), abs=1e-4
        )


def _assert_reaches_point_nine(algorithm: str) -> None:
    controller = make_controller(algorithm, DECISIONS, _config())
    rewards = run_search(controller, TARGET, num_updates=MAX_UPDATES, stop_at=0.9)
    batch = controller.config.batch_size
    assert np.mean(rewards[-2 * batch :]) >= 0.9, controller.num_updates
    assert match_reward(controller.most_likely_actions(), TARGET) >= 0.9
    print(f"{algorithm}: mean reward 0.9 after {controller.num_updates} updates")


def test_reinforce_reaches_point_nine_within_bounded_updates():
    """The issue's acceptance check for the default learner (about 10 s).

    Mean reward of two batches >= 0.9 within 300 updates of 8; over 4 seeds x
    2 targets the defaults needed 131-203 updates (REINFORCE), 134-212 (PPO).
    """
    _assert_reaches_point_nine("reinforce")


@pytest.mark.slow
def test_ppo_reaches_point_nine_within_bounded_updates():
    """The same for PPO, slow because it makes 4 optimizer passes per batch."""
    _assert_reaches_point_nine("ppo")


def test_ppo_learns_known_reward_quickly():
    """Fast PPO check: clear improvement over chance within 40 updates.

    (Chance is about 0.37; the last batches reach about 0.54.)
    """
    controller = make_controller("ppo", DECISIONS, _config())
    rewards = run_search(controller, TARGET, num_updates=40)
    batch = controller.config.batch_size
    first, last = np.mean(rewards[: 2 * batch]), np.mean(rewards[-4 * batch :])
    assert first < CHANCE + 0.1
    assert last > CHANCE + 0.1, (first, last)
    assert last > first + 0.05, (first, last)
    summary = controller.state_summary()
    assert summary["num_updates"] == 40
    # The policy has sharpened (the uniform policy's entropy is about 44 nats).
    assert summary["entropy"] < 0.9 * sum(math.log(d.num_choices) for d in DECISIONS)
    assert {"baseline", "loss", "mean_reward", "clip_fraction"} <= set(summary)


def _drive(controller, target, steps, failed_every=7):
    """Interleaved proposals/feedback with failures and out-of-order answers.

    The schedule depends only on proposal ids, so two calls of ``n`` steps
    drive a controller exactly like one call of ``2 n`` steps.
    """
    proposals = []
    for _ in range(steps):
        proposal = controller.propose()
        proposals.append(proposal)
        pid = proposal.proposal_id
        if pid % failed_every == failed_every - 1:
            controller.feedback_failed(pid, "diverged")
        elif pid % 3 == 2:
            continue  # stays in flight for a while, answered out of order later
        else:
            controller.feedback(pid, match_reward(proposal.actions, target))
        for pending in controller.pending_proposals()[:-2]:
            reward = match_reward(pending.actions, target)
            controller.feedback(pending.proposal_id, reward)
    return proposals


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo"])
def test_same_seed_same_proposals_and_resume_continues_identically(algorithm, tmp_path):
    config = _config(batch_size=3, seed=11)
    uninterrupted = make_controller(algorithm, DECISIONS, config)
    head = _drive(uninterrupted, TARGET, 14)
    uninterrupted.save(tmp_path)
    updates_at_save = uninterrupted.num_updates
    assert updates_at_save >= 2
    tail = _drive(uninterrupted, TARGET, 14)
    assert uninterrupted.num_updates >= updates_at_save + 3

    # Same seed from scratch: identical proposals, through several updates.
    again = make_controller(algorithm, DECISIONS, config)
    assert _drive(again, TARGET, 28) == head + tail

    # Resume from the mid-run checkpoint: continues exactly where it stopped,
    # including the proposals that were still in flight.
    resumed = make_controller(algorithm, DECISIONS, config)
    resumed.restore(tmp_path)
    assert resumed.num_updates == updates_at_save
    assert resumed.pending_proposals() == tuple(
        p
        for p in head
        if p.proposal_id in {q.proposal_id for q in resumed.pending_proposals()}
    )
    assert _drive(resumed, TARGET, 14) == tail
    assert resumed.state_summary() == uninterrupted.state_summary()

    # A different seed gives different proposals.
    other = make_controller(algorithm, DECISIONS, _config(batch_size=3, seed=12))
    assert other.propose().actions != head[0].actions


def test_failed_proposals_never_reach_the_learner():
    config = _config(batch_size=4)
    learner = LSTMController(DECISIONS, config)
    reference = LSTMController(DECISIONS, config)
    proposals = [learner.propose() for _ in range(6)]
    ref_proposals = [reference.propose() for _ in range(6)]
    assert proposals == ref_proposals
    # learner: 0, 2 fail; the rest get rewards. reference: only the rewards.
    for p in proposals:
        if p.proposal_id in (0, 2):
            learner.feedback_failed(p.proposal_id, "nan loss")
        else:
            learner.feedback(p.proposal_id, 0.1 * p.proposal_id)
            reference.feedback(p.proposal_id, 0.1 * p.proposal_id)
    assert learner.num_updates == reference.num_updates == 1
    probe = proposals[0].actions
    assert learner.log_prob(probe) == reference.log_prob(probe)
    assert learner.state_summary()["num_failed"] == 2


def test_nan_reward_is_refused_before_learning():
    controller = LSTMController(DECISIONS, _config(batch_size=1))
    proposal = controller.propose()
    before = controller.log_prob(proposal.actions)
    with pytest.raises(InvalidRewardError, match="feedback_failed"):
        controller.feedback(proposal.proposal_id, float("nan"))
    assert controller.num_updates == 0
    assert controller.log_prob(proposal.actions) == before


def test_restore_refuses_other_algorithm_or_space(tmp_path):
    controller = make_controller("reinforce", DECISIONS, _config())
    controller.propose()
    controller.save(tmp_path)
    with pytest.raises(CheckpointMismatchError, match="kind 'reinforce' != 'ppo'"):
        make_controller("ppo", DECISIONS, _config()).restore(tmp_path)
    with pytest.raises(CheckpointMismatchError, match="decisions differ"):
        make_controller("reinforce", DECISIONS[:6], _config()).restore(tmp_path)


def test_options_build_sample_and_learn():
    # Every option at once: each distinct shape costs a trace of its own.
    config = _config(
        batch_size=2,
        num_layers=2,
        hidden_size=16,
        embedding_size=8,
        share_embeddings=True,
        tanh_constant=2.5,
        temperature=5.0,
        grad_clip_norm=1.0,
    )
    controller = LSTMController(mnas_decisions(num_blocks=2), config)
    assert len(controller._policy.embeddings) == 6  # one table per kind
    for _ in range(2):
        proposal = controller.propose()
        assert proposal.log_prob == pytest.approx(
            controller.log_prob(proposal.actions), abs=1e-4
        )
        controller.feedback(proposal.proposal_id, 0.5)
    assert controller.num_updates == 1


def test_tanh_constant_bounds_the_logits():
    decision = (Decision("only", "kernel", ("3", "5")),)
    controller = LSTMController(decision, _config(tanh_constant=0.5, hidden_size=8))
    # |logit| <= 0.5, so no choice can fall below sigmoid(-1).
    low = 1.0 / (1.0 + math.exp(1.0))
    for action in (0, 1):
        assert math.exp(controller.log_prob([action])) >= low - 1e-6


def test_heads_are_shared_per_kind_and_number_of_choices():
    mixed = (
        Decision("block0/conv_op", "conv_op", ("mbconv_e1",)),
        Decision("block1/conv_op", "conv_op", ("mbconv_e3", "mbconv_e6")),
        Decision("block2/conv_op", "conv_op", ("mbconv_e3", "mbconv_e6")),
    )
    controller = LSTMController(mixed, _config())
    assert [k.shape[1] for k in controller._policy.head_kernels] == [1, 2]
    proposals = controller.propose_batch(16)
    assert {p.actions[0] for p in proposals} == {0}  # one choice: always it
    assert {p.actions[1] for p in proposals} == {0, 1}
    controller = LSTMController(DECISIONS, _config())
    assert len(controller._policy.head_kernels) == 6
    with pytest.raises(ValueError, match="algorithm"):
        LSTMController(DECISIONS, _config(), algorithm="a2c")
