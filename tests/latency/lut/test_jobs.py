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


def test_a_stopped_build_keeps_its_entries_says_so_and_unlocks(
    tmp_path, monkeypatch, capsys
):
    path = str(tmp_path / "table.jsonl")
    backend = _StoppedBackend(stop_at=4)
    monkeypatch.setattr(jobs, "_raw_backend", lambda config: backend)
    job = jobs.LutJob("build_lut", path, "tiny", calibration_archs=0, lut_rounds=1)
    with pytest.raises(KeyboardInterrupt):
        jobs._build(job, LatencyConfig(), tiny_space())
    kept = len(LookupTable.load(path))
    assert kept == len(backend.calls) == 3
    assert (
        f"stopped: 3 entries are in {path}; --build_lut again measures only the "
        "missing ones"
    ) in capsys.readouterr().out
    FileLock(path + ".lock", "table").acquire().release()  # not held any more
