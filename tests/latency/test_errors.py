"""LatencyError carries the command and the end of its output."""

from __future__ import annotations

import copy

from mnas.latency.errors import OUTPUT_TAIL_CHARS, LatencyError, format_command, tail


def test_message_includes_command_and_tail():
    error = LatencyError(
        "benchmark crashed", ["adb", "-s", "SER 1", "shell", "x"], "line1\nSegv\n"
    )
    text = str(error)
    assert "benchmark crashed" in text
    assert "adb -s 'SER 1' shell x" in text
    assert "Segv" in text
    assert error.command == ["adb", "-s", "SER 1", "shell", "x"]
    assert error.reason == "benchmark crashed"
    assert isinstance(error, RuntimeError)


def test_tail_keeps_the_end_only():
    output = "start-" + "x" * 5000 + "-END"
    error = LatencyError("failed", "cmd", output)
    assert len(error.output_tail) == OUTPUT_TAIL_CHARS
    assert error.output_tail.endswith("-END")
    assert "start-" not in str(error)
    assert tail(b"\xffabc", 2) == "bc"
    assert tail(None) == ""


def test_string_command_and_none():
    assert format_command("adb devices") == "adb devices"
    assert format_command(None) == "<none>"
    error = LatencyError("no device")
    assert str(error) == "no device" and error.command is None


def test_survives_copy_and_process_boundaries():
    error = LatencyError("boom", ["a", "b"], "out")
    clone = copy.deepcopy(error)
    assert (clone.reason, clone.command, clone.output_tail) == (
        "boom",
        ["a", "b"],
        "out",
    )
    assert str(clone) == str(error)
