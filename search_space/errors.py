"""Error types of the search-space layer.

All derive from ``ValueError`` so that callers can catch bad user input with one
clause, while tests can still check the precise kind.
"""


class SpecError(ValueError):
    """An architecture specification is malformed or inconsistent."""


class BlockStringError(SpecError):
    """A block string does not follow the grammar; the message names the field."""


class UnknownPresetError(SpecError, KeyError):
    """A preset name is not known; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message.
        return str(self.args[0])


class ActionError(ValueError):
    """An action vector does not fit the search space; the message names the decision."""


class NotInSpaceError(ValueError):
    """An architecture cannot be expressed by the search space's decisions."""
