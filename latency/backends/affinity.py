"""CPU pinning for in-process timing (the host's ``taskset``).

Timing noise on a shared machine comes largely from the scheduler moving
the benchmark between cores; pinning the timing thread to one core is the
cheapest fix.  Linux applies ``sched_setaffinity(0, ...)`` to the calling
thread only, so pool workers can each pin themselves to a different core,
and threads the runtime starts afterwards inherit the mask.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

#: Largest CPU number a list may name (a range is expanded into a set).
MAX_CPU = 4095


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Parses a taskset-style list such as ``'0,2-3'`` into ``(0, 2, 3)``."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        if sep:
            first, last = int(low), int(high)
            if last < first or last > MAX_CPU:
                raise ValueError(f"bad CPU range {part!r}")
            cpus.update(range(first, last + 1))
        else:
            cpus.add(int(low))
    if not cpus or min(cpus) < 0:
        raise ValueError(f"bad CPU list {text!r}")
    return tuple(sorted(cpus))


def cpu_mask_hex(cpus: Iterable[int]) -> str:
    """Hex affinity mask (``taskset`` syntax) for a set of CPU numbers."""
    mask = 0
    for cpu in cpus:
        mask |= 1 << int(cpu)
    return format(mask, "x")


def mask_cpus(mask: str | int) -> tuple[int, ...]:
    """CPU numbers of a hex affinity mask (``'f0'`` -> ``(4, 5, 6, 7)``)."""
    value = (
        mask if isinstance(mask, int) else int(str(mask).lower().removeprefix("0x"), 16)
    )
    if value <= 0:
        raise ValueError(f"affinity mask {mask!r} selects no CPU")
    return tuple(bit for bit in range(value.bit_length()) if value >> bit & 1)


@contextlib.contextmanager
def pinned_to(cpus: Iterable[int] | None) -> Iterator[None]:
    """Pins the calling thread to ``cpus`` for the block; None leaves it alone."""
    if cpus is None:
        yield
        return
    wanted = set(cpus)
    available = os.sched_getaffinity(0)
    if not wanted <= available:
        raise ValueError(
            f"cannot pin to CPUs {sorted(wanted)}: only {sorted(available)} available"
        )
    os.sched_setaffinity(0, wanted)
    try:
        yield
    finally:
        os.sched_setaffinity(0, available)


def sibling_cpus(cpus: Iterable[int], root: str = "") -> tuple[int, ...]:
    """``cpus`` plus their SMT siblings (hyperthreads sharing a core).

    Read from ``/sys/devices/system/cpu/cpuN/topology/thread_siblings_list``;
    a CPU whose topology is unreadable counts as its own only sibling.  A
    VM shows only the siblings the hypervisor chose to expose.
    """
    found: set[int] = set()
    for cpu in cpus:
        found.add(int(cpu))
        path = (
            f"{root}/sys/devices/system/cpu/cpu{int(cpu)}/topology/thread_siblings_list"
        )
        try:
            with open(path) as handle:
                found.update(parse_cpu_list(handle.read().strip()))
        except (OSError, ValueError):
            continue
    return tuple(sorted(found))
