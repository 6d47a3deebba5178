"""The progress line: bar, counts, ETA from the pace since the start."""

import io

import pytest

from mnas.io import progress as progress_module
from mnas.io.progress import Progress, format_duration


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0m00s"),
        (59.4, "0m59s"),
        (61, "1m01s"),
        (3600, "1h00m"),
        (7322, "2h02m"),
        (-3, "0m00s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_eta_counts_only_the_trials_done_in_this_run(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    stream = io.StringIO()
    bar = Progress(total=10, done=4, stream=stream, width=10)
    clock.now += 60.0  # one trial in a minute, 5 left after it
    line = bar.update(5, "trial 4")
    assert line == "[#####.....] 5/10  50% elapsed 1m00s ETA 5m00s | trial 4"
    assert stream.getvalue() == line + "\n"
    clock.now += 60.0
    assert bar.update(10).endswith("10/10 100% elapsed 2m00s ETA 0m00s")


def test_no_eta_before_anything_is_done(monkeypatch):
    monkeypatch.setattr(progress_module.time, "monotonic", _Clock())
    line = Progress(total=3, stream=io.StringIO(), width=3).update(0)
    assert line == "[...] 0/3   0% elapsed 0m00s ETA --"
