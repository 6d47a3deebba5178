"""adb client: device list parsing and serial selection."""

from __future__ import annotations

import pytest

from mnas.latency.backends.adb import AdbClient, AdbDevice, parse_adb_devices
from mnas.latency.errors import LatencyError


def test_parse_adb_devices_forms():
    text = (
        "* daemon not running; starting now at tcp:5037\n"
        "* daemon started successfully\n"
        "List of devices attached\n"
        "FA6AB0301234\tdevice\n"
        "emulator-5554\toffline\n"
        "R58M12345\tunauthorized usb:1-1 transport_id:3\n"
        "0123456789ABCDEF       device usb:2-1 product:sailfish model:Pixel device:sailfish\n"
        "\n"
    )
    assert parse_adb_devices(text) == [
        AdbDevice("FA6AB0301234", "device"),
        AdbDevice("emulator-5554", "offline"),
        AdbDevice("R58M12345", "unauthorized"),
        AdbDevice("0123456789ABCDEF", "device"),
    ]
    assert parse_adb_devices("List of devices attached\n\n") == []
    assert (
        parse_adb_devices("adb server version (40) doesn't match this client (41)\n")
        == []
    )


def test_command_always_names_the_serial(monkeypatch):
    client = AdbClient("SER1", adb_path="/x/adb")
    monkeypatch.setattr(client, "devices", lambda: [AdbDevice("SER1", "device")])
    assert client.command("shell", "ls") == ["/x/adb", "-s", "SER1", "shell", "ls"]


def test_missing_adb_binary_is_a_latency_error():
    with pytest.raises(LatencyError, match="cannot start"):
        AdbClient("S", adb_path="/nonexistent/adb").devices()
