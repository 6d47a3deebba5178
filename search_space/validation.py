"""Checks of user-given values, shared by every config of mnas.

Bad input is refused where a value is defined (a spec's or a config's
``__post_init__``), with an error naming the field and its allowed range, so
it never travels on to fail deep in the builder or the trainer, or worse,
to be used. Each check takes the error class of its caller's layer (a
``ValueError`` subclass), so a caller can catch that layer's input errors
with one clause. The search-space layer imports nothing else of mnas, so the
checks live here and other layers reach them through ``mnas.search_space``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Collection, Iterable
from typing import Any

#: Longest ``repr`` of a refused value that an error message quotes in full
#: (a 4,000-digit integer or a megabyte string would bury the message).
MAX_SHOWN_CHARS = 60


def shown(value: Any) -> str:
    """``repr(value)``, shortened when long."""
    text = repr(value)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return f"{text[: MAX_SHOWN_CHARS - 20]}... ({len(text)} characters)"


def shown_names(names: Iterable[Any]) -> str:
    """Field names for a message, sorted: plain when they are identifiers,
    ``shown`` otherwise (so a key holding a newline cannot split the line)."""
    return ", ".join(
        name if isinstance(name, str) and name.isidentifier() else shown(name)
        for name in sorted(names, key=str)
    )


def check_fields(
    cls: type,
    names: Iterable[Any],
    what: str,
    *,
    error: type[ValueError] = ValueError,
) -> None:
    """Refuses names that are no field of the dataclass ``cls``: a config or
    spec read from a file must not drop a misspelt key silently."""
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise error(f"unknown {what}: {shown_names(unknown)}")


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def interval(
    low: float | None,
    high: float | None,
    low_open: bool = False,
    high_open: bool = False,
) -> str:
    """``[0, 1)``, ``(0, 8]``, ``> 0``, ``>= 1``, ``<= 5``, or ``''`` (no bound)."""
    if low is not None and high is not None:
        return (
            f"{'(' if low_open else '['}{_bound(low)}, "
            f"{_bound(high)}{')' if high_open else ']'}"
        )
    if low is not None:
        return f"{'>' if low_open else '>='} {_bound(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_bound(high)}"
    return ""


def _within(
    value: float,
    low: float | None,
    high: float | None,
    low_open: bool,
    high_open: bool,
) -> bool:
    # Integers are compared as integers: float(10**400) would overflow.
    above_low = low is None or (value > low if low_open else value >= low)
    below_high = high is None or (value < high if high_open else value <= high)
    return above_low and below_high


def _range_text(kind: str, low, high, low_open, high_open, allow_none) -> str:
    bounds = interval(low, high, low_open, high_open)
    if bounds.startswith(("[", "(")):
        text = f"{kind} in {bounds}"
    else:
        text = f"{kind} {bounds}".rstrip()
    return f"{text} or None" if allow_none else text


def check_int(
    name: str,
    value: Any,
    low: int | None = None,
    high: int | None = None,
    *,
    error: type[ValueError] = ValueError,
    allow_none: bool = False,
) -> int | None:
    """``value`` as an ``int`` if it is an integer (not a bool) in
    ``[low, high]``, else ``error`` naming ``name`` and the range."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not _within(value, low, high, False, False)
    ):
        kind = _range_text("an integer", low, high, False, False, allow_none)
        raise error(f"{name} must be {kind}, got {shown(value)}")
    return value if type(value) is int else int(value)


def check_real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    error: type[ValueError] = ValueError,
    allow_none: bool = False,
) -> float | int | None:
    """``value`` if it is a finite real number (an int or a float, not a
    bool, not a string) within the bounds, else ``error`` naming ``name`` and
    the range. NumPy scalars come back as Python numbers; Python ints and
    floats come back unchanged (so a spec's JSON keeps its spelling)."""
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok and not isinstance(value, numbers.Integral):
        ok = math.isfinite(float(value))
    if not (ok and _within(value, low, high, low_open, high_open)):
        kind = "a number" if low is not None and high is not None else "a finite number"
        kind = _range_text(kind, low, high, low_open, high_open, allow_none)
        raise error(f"{name} must be {kind}, got {shown(value)}")
    if type(value) in (int, float):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def check_choice(
    name: str,
    value: Any,
    choices: Collection[str],
    *,
    error: type[ValueError] = ValueError,
) -> str:
    """``value`` if it is one of the strings ``choices``, else ``error``
    listing them."""
    if not isinstance(value, str) or value not in choices:
        raise error(f"{name} must be one of {tuple(choices)}, got {shown(value)}")
    return value


def check_text(
    name: str,
    value: Any,
    max_length: int,
    *,
    error: type[ValueError] = ValueError,
    allow_none: bool = False,
    allow_empty: bool = False,
) -> str | None:
    """``value`` if it is a string of printable characters (no newline or
    other control character, which would break a one-line message or a
    journal line) and at most ``max_length`` long."""
    if value is None and allow_none:
        return None
    if (
        not isinstance(value, str)
        or len(value) > max_length
        or (not value and not allow_empty)
        or not value.isprintable()
    ):
        kind = "a string" if allow_empty else "a non-empty string"
        suffix = " or None" if allow_none else ""
        raise error(
            f"{name} must be {kind} of at most {max_length} printable "
            f"characters{suffix}, got {shown(value)}"
        )
    return value


def check_bool(name: str, value: Any, *, error: type[ValueError] = ValueError) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise error(f"{name} must be True or False, got {shown(value)}")
    return value
