"""Random controller: uniform, seeded, resumable, and never better than chance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnas.controller import (
    CONTROLLER_KINDS,
    ControllerConfig,
    LSTMController,
    RandomController,
    make_controller,
)
from mnas.testing.controller import (
    chance_reward,
    hidden_target,
    mnas_decisions,
    run_search,
)

DECISIONS = mnas_decisions()


def test_stays_near_chance_on_known_reward():
    controller = make_controller("random", DECISIONS, ControllerConfig(batch_size=8))
    rewards = run_search(controller, hidden_target(DECISIONS), num_updates=40)
    chance = chance_reward(DECISIONS)  # about 0.41
    # 320 samples of a mean of 42 indicators: standard error about 0.004.
    assert abs(np.mean(rewards) - chance) < 0.03
    assert abs(np.mean(rewards[-64:]) - chance) < 0.06  # no learning
    assert controller.num_updates == 40


def test_choices_are_uniform_and_cover_every_option():
    controller = RandomController(DECISIONS, ControllerConfig(seed=3))
    actions = np.array([controller.propose().actions for _ in range(600)])
    for column, decision in enumerate(DECISIONS):
        counts = np.bincount(actions[:, column], minlength=decision.num_choices)
        assert len(counts) == decision.num_choices
        expected = 600 / decision.num_choices
        assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))
    uniform = -sum(math.log(d.num_choices) for d in DECISIONS)
    assert controller.log_prob(actions[0]) == pytest.approx(uniform)


def test_same_seed_same_proposals_other_seed_different():
    first = RandomController(DECISIONS, ControllerConfig(seed=5))
    second = RandomController(DECISIONS, ControllerConfig(seed=5))
    other = RandomController(DECISIONS, ControllerConfig(seed=6))
    a = [first.propose() for _ in range(10)]
    assert a == [second.propose() for _ in range(10)]
    assert [p.actions for p in a] != [other.propose().actions for _ in range(10)]


def test_save_restore_continues_identically(tmp_path):
    config = ControllerConfig(batch_size=2, seed=9)
    controller = RandomController(DECISIONS, config)
    for _ in range(5):
        controller.propose()
    controller.feedback(0, 0.5)
    controller.feedback(1, 0.5)
    controller.feedback_failed(2)
    controller.save(tmp_path)
    expected = [controller.propose() for _ in range(5)]

    resumed = RandomController(DECISIONS, config)
    resumed.restore(tmp_path)
    assert resumed.num_updates == 1
    assert [p.proposal_id for p in resumed.pending_proposals()] == [3, 4]
    assert [resumed.propose() for _ in range(5)] == expected


@pytest.mark.parametrize("kind", CONTROLLER_KINDS)
def test_the_factory_builds_each_kind_it_lists(kind):
    config = ControllerConfig(seed=2)
    controller = make_controller(kind, DECISIONS[:6], config)
    assert controller.kind == kind
    assert controller.decisions == DECISIONS[:6]
    if kind == "random":
        assert type(controller) is RandomController
    else:  # the learners fill in their algorithm's defaults
        assert type(controller) is LSTMController
        assert controller.config == config.resolve(kind)


def test_the_factory_refuses_an_unknown_kind_naming_the_known_ones():
    with pytest.raises(ValueError) as info:
        make_controller("evolution", DECISIONS)
    assert str(info.value) == (
        "unknown controller kind 'evolution'; expected one of "
        "('reinforce', 'ppo', 'random')"
    )
