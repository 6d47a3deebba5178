"""One categorical decision of a search space: the controller's only view of it."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Decision:
    """A categorical choice the controller makes once per architecture.

    Attributes:
      name: unique name within the space, e.g. ``"block3/kernel"``.
      kind: what is being chosen, shared by decisions of the same type across
        blocks (e.g. ``"kernel"``); controllers may share a softmax head per kind.
      choices: human-readable labels of the choices, in action order.
    """

    name: str
    kind: str
    choices: tuple[str, ...]

    @property
    def num_choices(self) -> int:
        return len(self.choices)
