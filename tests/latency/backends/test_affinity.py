"""CPU list parsing, masks, and thread pinning."""

from __future__ import annotations

import os
import threading

import pytest

from mnas.latency.backends.affinity import cpu_mask_hex, parse_cpu_list, pinned_to


def test_parse_cpu_list():
    assert parse_cpu_list("0,2-3") == (0, 2, 3)
    assert parse_cpu_list(" 4-7 ,1") == (1, 4, 5, 6, 7)
    for bad in ("", "3-1", "-1", "a"):
        with pytest.raises(ValueError):
            parse_cpu_list(bad)


def test_cpu_mask_hex():
    assert cpu_mask_hex([4, 5, 6, 7]) == "f0"
    assert cpu_mask_hex([0]) == "1"


def test_pinning_is_per_thread_and_restored():
    before = os.sched_getaffinity(0)
    cpu = min(before)
    seen = {}

    def other():
        seen["other"] = os.sched_getaffinity(0)

    with pinned_to([cpu]):
        seen["inside"] = os.sched_getaffinity(0)
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen["inside"] == {cpu}
    # A thread started while pinned inherits the mask (like runtime threads).
    assert seen["other"] == {cpu}
    assert os.sched_getaffinity(0) == before
    with pinned_to(None):
        assert os.sched_getaffinity(0) == before
