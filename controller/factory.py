"""Builds the controller a search names on its command line."""

from __future__ import annotations

from collections.abc import Sequence

from mnas.controller.base import Controller
from mnas.controller.config import CONTROLLER_KINDS, ControllerConfig, ControllerKind
from mnas.controller.lstm import LSTMController
from mnas.controller.random_search import RandomController
from mnas.search_space.decision import Decision


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
