"""--build_lut stopped by Ctrl-C or SIGTERM keeps what it measured."""

import pytest

from mnas.io.lock import FileLock
from mnas.latency.config import LatencyConfig
from mnas.latency.lut import jobs
from mnas.latency.lut.table import LookupTable
from mnas.testing.lut import FixedBackend, tiny_space


class _StoppedBackend(FixedBackend):
    """Stopped (as by Ctrl-C) during its ``stop_at``-th measurement."""

    def __init__(self, stop_at: int) -> None:
        super().__init__()
        self.stop_at = stop_at

    def measure(self, tflite_path):
        if len(self.calls) + 1 == self.stop_at:
            raise KeyboardInterrupt
        return super().measure(tflite_path)


@pytest.mark.parametrize(
    "adaptive, stop_at, kept",
    [
        (False, 4, 3),  # one plain loop per entry: every finished entry is kept
        # A batch of 8 entries in 3 interleaved rounds (24 calls) is written
        # when it ends; a stop in the second batch loses only that batch.
        (True, 30, 8),
    ],
)
def test_a_stopped_build_keeps_its_entries_says_so_and_unlocks(
    tmp_path, monkeypatch, capsys, adaptive, stop_at, kept
):
    path = str(tmp_path / "table.jsonl")
    backend = _StoppedBackend(stop_at=stop_at)
    monkeypatch.setattr(jobs, "_raw_backend", lambda config: backend)
    job = jobs.LutJob("build_lut", path, "tiny", calibration_archs=0, lut_rounds=1)
    with pytest.raises(KeyboardInterrupt):
        jobs._build(job, LatencyConfig(adaptive=adaptive), tiny_space())
    assert len(LookupTable.load(path)) == kept
    assert len(backend.calls) == stop_at - 1
    assert (
        f"stopped: {kept} entries are in {path}; --build_lut again measures only "
        "the missing ones"
    ) in capsys.readouterr().out
    FileLock(path + ".lock", "table").acquire().release()  # not held any more
