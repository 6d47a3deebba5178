"""run_command: timeouts kill whole process groups, exits are described."""

from __future__ import annotations

import sys
import time

import pytest

from mnas.latency.backends.process import describe_returncode, run_command
from mnas.latency.errors import LatencyError


def test_output_and_exit_code():
    done = run_command(
        [
            sys.executable,
            "-c",
            "import sys; print('out'); print('err', file=sys.stderr); sys.exit(4)",
        ],
        timeout_s=30,
    )
    assert done.returncode == 4
    assert "out" in done.output and "err" in done.output
    assert done.describe_exit() == "exit code 4"


def test_timeout_kills_grandchildren_and_returns_promptly(tmp_path):
    # The child shell's grandchild keeps stdout open; subprocess.run would hang.
    script = "echo started; sleep 60 & sleep 60; echo never"
    start = time.monotonic()
    with pytest.raises(LatencyError, match="timed out after 1 s") as info:
        run_command(["bash", "-c", script], timeout_s=1)
    assert time.monotonic() - start < 10
    assert "started" in info.value.output_tail
    assert "never" not in info.value.output_tail
    assert info.value.command == ["bash", "-c", script]


def test_missing_program():
    with pytest.raises(LatencyError, match="cannot start"):
        run_command(["/nonexistent/tool", "--flag"], timeout_s=5)


def test_env_is_added_to_the_environment():
    done = run_command(
        [
            sys.executable,
            "-c",
            "import os; print(os.environ['MNAS_X'], 'PATH' in os.environ)",
        ],
        timeout_s=30,
        env={"MNAS_X": "42"},
    )
    assert done.output.split() == ["42", "True"]


def test_describe_returncode():
    assert describe_returncode(-11) == "killed by SIGSEGV"
    assert describe_returncode(139) == "exit code 139 (SIGSEGV?)"
    assert describe_returncode(1) == "exit code 1"
