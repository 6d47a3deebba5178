"""What every fuzz test asserts about one input, and how many inputs it runs.

Each generated input must be either accepted and valid, or refused with the
project's error (a ``ValueError`` raised by mnas's own code) whose message
names the field: never another exception, never a silent acceptance of an
input built to be invalid, and within bounded time (hypothesis' deadline)
and memory (``tracemalloc``'s peak while the target runs).

Scale: ``MNAS_FUZZ_EXAMPLES`` sets the examples per test (default 200, a few
seconds); the inputs are the same on every run (CI must not fail on a draw
it never made before) unless ``MNAS_FUZZ_RANDOM=1`` asks for new ones, as a
long exploratory run should; ``MNAS_FUZZ_REPORT=path.json`` writes how many inputs each target
accepted and refused (docs/hardening.md records a run).
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import traceback
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

#: Examples per fuzz test.
EXAMPLES = int(os.environ.get("MNAS_FUZZ_EXAMPLES", "200"))
#: Whether to draw new inputs on each run instead of the fixed sequence.
RANDOM = os.environ.get("MNAS_FUZZ_RANDOM", "") == "1"
#: Longest time one input may take (generation excluded).
DEADLINE = datetime.timedelta(seconds=5)
#: Most memory (Python allocations) one input may take.
MAX_PEAK_BYTES = 64 * 2**20

#: The project's source folders: a refusal must be raised there, not in the
#: standard library or a dependency (a bare ``TypeError`` from ``int()``).
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PROJECT_DIRS = tuple(
    os.path.join(_ROOT, name) + os.sep
    for name in ("mnas", "search_space", "controller", "latency", "flags")
)


#: The settings of every fuzz test (``@settings(settings.get_profile(PROFILE))``).
PROFILE = "mnas-fuzz"
settings.register_profile(
    PROFILE,
    max_examples=EXAMPLES,
    deadline=DEADLINE,
    derandomize=not RANDOM,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Outcome:
    """How one input ended: ``value`` if accepted, else ``error``."""

    def __init__(self, value: Any = None, error: BaseException | None = None):
        self.value = value
        self.error = error

    @property
    def accepted(self) -> bool:
        return self.error is None

    @property
    def message(self) -> str:
        return str(self.error)


class Fuzz:
    """Runs targets under the memory bound and counts outcomes per target."""

    def __init__(self) -> None:
        self.counts: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter
        )

    def run(self, target: str, function: Callable[..., Any], *args: Any) -> Outcome:
        """``function(*args)``: its value, or the ValueError it raised (any other
        exception propagates and fails the test)."""
        tracemalloc.start()
        try:
            outcome = Outcome(value=function(*args))
        except ValueError as error:
            outcome = Outcome(error=error)
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert peak <= MAX_PEAK_BYTES, f"{target}: {peak / 2**20:.0f} MiB for one input"
        self.counts[target]["accepted" if outcome.accepted else "refused"] += 1
        return outcome

    def count(self, target: str, outcome: str) -> None:
        self.counts[target][outcome] += 1

    def refused(self, outcome: Outcome, names: Iterable[str], what: Any) -> None:
        """Asserts ``outcome`` is the project's refusal naming one of ``names``."""
        error = outcome.error
        assert error is not None, f"silently accepted invalid input {what!r}"
        frame = traceback.extract_tb(error.__traceback__)[-1]
        assert frame.filename.startswith(_PROJECT_DIRS), (
            f"{type(error).__name__} from {frame.filename}:{frame.lineno} "
            f"for {what!r}: {error}"
        )
        names = tuple(names)
        assert any(name in outcome.message for name in names), (
            f"refusal of {what!r} names none of {names}: {outcome.message}"
        )
        assert "\n" not in outcome.message, outcome.message


@pytest.fixture(scope="session")
def fuzz():
    recorder = Fuzz()
    yield recorder
    path = os.environ.get("MNAS_FUZZ_REPORT")
    if path:
        report = {
            "examples_per_test": EXAMPLES,
            "targets": {k: dict(v) for k, v in sorted(recorder.counts.items())},
        }
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1, sort_keys=True)
