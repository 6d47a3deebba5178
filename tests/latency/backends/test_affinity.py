"""CPU list parsing, masks, and thread pinning."""

from __future__ import annotations

import os
import threading

import pytest

from mnas.latency.backends.affinity import (
    cpu_mask_hex,
    mask_cpus,
    parse_cpu_list,
    pinned_to,
    sibling_cpus,
)


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


def test_mask_cpus_inverts_cpu_mask_hex():
    assert mask_cpus("f0") == (4, 5, 6, 7)
    assert mask_cpus("0x3") == (0, 1)
    assert mask_cpus(5) == (0, 2)
    assert mask_cpus(cpu_mask_hex([1, 6])) == (1, 6)
    with pytest.raises(ValueError, match="affinity mask '0' selects no CPU"):
        mask_cpus("0")


def test_sibling_cpus_reads_the_topology(tmp_path):
    for cpu, siblings in {0: "0,4", 4: "0,4", 1: "1,5"}.items():
        folder = tmp_path / f"sys/devices/system/cpu/cpu{cpu}/topology"
        folder.mkdir(parents=True)
        (folder / "thread_siblings_list").write_text(siblings + "\n")
    assert sibling_cpus([0], root=str(tmp_path)) == (0, 4)
    assert sibling_cpus([0, 1], root=str(tmp_path)) == (0, 1, 4, 5)
    # No topology (some VMs): a CPU is its own only sibling.
    assert sibling_cpus([7], root=str(tmp_path)) == (7,)
