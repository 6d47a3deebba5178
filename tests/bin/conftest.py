"""Running a binary as a user runs it, and reading its one-line error.

A binary that refuses its input prints exactly one line on stderr (after
whatever TensorFlow's C++ runtime prints while it loads, which no flag can
silence) and exits non-zero.
"""

import os
import re
import subprocess
import sys

import pytest

# What TensorFlow/absl C++ print on import, before any Python code can stop them.
_RUNTIME_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
    r"[IWE]\d{4} \d\d:\d\d:\d\d|To enable the following instructions|"
    r"\S+\.cc:\d+\])"
)


class Cli:
    def __init__(self, module: str):
        self.module = module

    def run(self, *args: str, timeout: float = 300, env: dict | None = None):
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", f"mnas.bin.{self.module}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
        )

    def refusal(self, *args: str, status: int = 1, **kwargs) -> str:
        """Runs the binary, asserts it refused with ``status`` and one stderr
        line (no traceback), and returns that line."""
        result = self.run(*args, **kwargs)
        lines = [
            line
            for line in result.stderr.splitlines()
            if line.strip() and not _RUNTIME_NOISE.match(line)
        ]
        assert result.returncode == status, result.stderr[-3000:]
        assert len(lines) == 1, result.stderr[-3000:]
        return lines[0]


@pytest.fixture
def cli(request):
    """``cli.run(...)`` / ``cli.refusal(...)`` of the binary named by the test
    module (``tests/bin/test_<binary>.py``)."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    return Cli(name)
