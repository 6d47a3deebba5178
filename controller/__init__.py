"""Architecture controllers: propose architectures, learn from their rewards.

A controller sees the search space only as a sequence of
:class:`mnas.search_space.decision.Decision`; it never builds models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from mnas.controller.base import (
    CheckpointMismatchError,
    Controller,
    DuplicateFeedbackError,
    FeedbackError,
    InvalidRewardError,
    Proposal,
    UnknownProposalError,
)
from mnas.controller.config import ALGORITHM_DEFAULTS, ControllerConfig
from mnas.controller.lstm import LSTMController
from mnas.controller.random_search import RandomController
from mnas.search_space.decision import Decision

ControllerKind = Literal["reinforce", "ppo", "random"]
CONTROLLER_KINDS: tuple[str, ...] = ("reinforce", "ppo", "random")


def make_controller(
    kind: ControllerKind,
    decisions: Sequence[Decision],
    config: ControllerConfig | None = None,
) -> Controller:
    """Builds the controller named by ``kind`` (as given on the command line)."""
    config = config or ControllerConfig()
    if kind == "random":
        return RandomController(decisions, config)
    if kind in ("reinforce", "ppo"):
        return LSTMController(decisions, config, algorithm=kind)
    raise ValueError(
        f"unknown controller kind {kind!r}; expected one of {CONTROLLER_KINDS}"
    )


__all__ = [
    "ALGORITHM_DEFAULTS",
    "CONTROLLER_KINDS",
    "CheckpointMismatchError",
    "Controller",
    "ControllerConfig",
    "ControllerKind",
    "DuplicateFeedbackError",
    "FeedbackError",
    "InvalidRewardError",
    "LSTMController",
    "Proposal",
    "RandomController",
    "UnknownProposalError",
    "make_controller",
]
