"""Decision lists and a known reward for controller tests.

The decisions mirror the MnasNet space (7 blocks x 6 decisions) without
importing it, so controller tests stay independent of the search space code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mnas.controller import Controller
from mnas.search_space.decision import Decision

MNAS_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("conv_op", ("conv", "sepconv", "mbconv1", "mbconv3", "mbconv6")),
    ("kernel", ("3", "5")),
    ("se_ratio", ("0", "0.25")),
    ("skip", ("none", "identity", "pool")),
    ("filters", ("0.75", "1.0", "1.25")),
    ("layers", ("-1", "0", "+1")),
)


def mnas_decisions(num_blocks: int = 7) -> tuple[Decision, ...]:
    """The 42-decision MnasNet-shaped list, in the space's order."""
    return tuple(
        Decision(f"block{block}/{kind}", kind, choices)
        for block in range(num_blocks)
        for kind, choices in MNAS_KINDS
    )


def hidden_target(decisions: Sequence[Decision], seed: int = 123) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([rng.integers(d.num_choices) for d in decisions])


def match_reward(actions: Sequence[int], target: np.ndarray) -> float:
    """Fraction of decisions equal to the hidden target."""
    return float(np.mean(np.asarray(actions) == target))


def chance_reward(decisions: Sequence[Decision]) -> float:
    """Expected match reward of uniform sampling."""
    return float(np.mean([1.0 / d.num_choices for d in decisions]))


def run_search(
    controller: Controller, target: np.ndarray, num_updates: int, stop_at: float = 2.0
) -> list[float]:
    """Synchronous batches until ``num_updates``, or until the mean reward of the
    last two batches reaches ``stop_at``.

    Each batch is proposed in one call, as a search with one worker per batch
    slot would. Returns every reward in order.
    """
    batch_size = controller.config.batch_size
    rewards: list[float] = []
    while controller.num_updates < num_updates:
        for proposal in controller.propose_batch(batch_size):
            rewards.append(match_reward(proposal.actions, target))
            controller.feedback(proposal.proposal_id, rewards[-1])
        if np.mean(rewards[-2 * batch_size :]) >= stop_at:
            break
    return rewards
