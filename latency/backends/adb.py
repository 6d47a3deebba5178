"""A thin adb client: device checks, push, and quoted remote shell commands.

Every device command goes through ``adb -s SERIAL`` so that a second phone
plugged in later can never receive someone else's benchmark.  The device
list is checked first so that a missing phone fails in well under a second
with a message that says what to do, rather than as a timeout later.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mnas.latency.backends.process import CommandOutput, run_command
from mnas.latency.errors import LatencyError

DEFAULT_ADB_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AdbDevice:
    """One line of ``adb devices``: a serial and its state."""

    serial: str
    state: str  # "device" when usable; "unauthorized", "offline", ...

    @property
    def usable(self) -> bool:
        return self.state == "device"


def parse_adb_devices(text: str) -> list[AdbDevice]:
    """Parses ``adb devices`` (or ``-l``) output, skipping daemon chatter."""
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("*") or line.startswith("List of devices"):
            continue
        parts = line.split()
        if len(parts) >= 2 and not line.lower().startswith(("adb ", "error")):
            devices.append(AdbDevice(parts[0], parts[1]))
    return devices


def describe_devices(devices: Sequence[AdbDevice]) -> str:
    return ", ".join(f"{d.serial} ({d.state})" for d in devices) or "nothing"


class AdbClient:
    """Runs adb commands against one device, chosen and checked up front."""

    def __init__(
        self,
        serial: str | None = None,
        adb_path: str = "adb",
        timeout_s: float = DEFAULT_ADB_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.adb_path = adb_path
        self.requested_serial = serial
        self.timeout_s = timeout_s
        self.env = dict(env) if env else None
        self._serial: str | None = None

    def devices(self) -> list[AdbDevice]:
        """What ``adb devices`` lists right now."""
        command = [self.adb_path, "devices"]
        done = run_command(command, self.timeout_s, env=self.env)
        if done.returncode != 0:
            raise LatencyError(
                f"`adb devices` failed ({done.describe_exit()})", command, done.output
            )
        return parse_adb_devices(done.output)

    @property
    def serial(self) -> str:
        """The checked serial of the target device (checks on first use)."""
        if self._serial is None:
            self._serial = self.resolve_serial()
        return self._serial

    def resolve_serial(self) -> str:
        """Picks the target device; fails fast, naming what is connected."""
        command = [self.adb_path, "devices"]
        devices = self.devices()
        wanted = self.requested_serial
        if not devices:
            raise LatencyError(
                "no Android device is connected: `adb devices` lists none. Connect "
                "a phone with USB debugging enabled, accept the authorization "
                "prompt, and check that `adb devices` lists it.",
                command,
            )
        if wanted is None:
            usable = [d for d in devices if d.usable]
            if len(usable) == 1:
                return usable[0].serial
            if not usable:
                raise LatencyError(
                    "no usable Android device is connected; `adb devices` lists: "
                    f"{describe_devices(devices)}",
                    command,
                )
            raise LatencyError(
                "several devices are connected; pass the serial of one of: "
                f"{describe_devices(usable)}",
                command,
            )
        match = [d for d in devices if d.serial == wanted]
        if not match:
            raise LatencyError(
                f"device {wanted!r} is not connected; `adb devices` lists: "
                f"{describe_devices(devices)}",
                command,
            )
        if not match[0].usable:
            raise LatencyError(
                f"device {wanted!r} is {match[0].state}, not ready (run "
                "`adb devices`; accept the USB debugging prompt if unauthorized)",
                command,
            )
        return wanted

    def command(self, *args: str) -> list[str]:
        """``adb -s SERIAL args...`` (the argv, no local shell involved)."""
        return [self.adb_path, "-s", self.serial, *args]

    def run(self, *args: str, timeout_s: float | None = None) -> CommandOutput:
        """Runs an adb subcommand on the device; the caller judges the exit."""
        return run_command(
            self.command(*args),
            self.timeout_s if timeout_s is None else timeout_s,
            env=self.env,
        )

    def check(self, *args: str, timeout_s: float | None = None) -> CommandOutput:
        """Like :meth:`run` but a non-zero exit raises LatencyError."""
        done = self.run(*args, timeout_s=timeout_s)
        if done.returncode != 0:
            raise LatencyError(
                f"adb {args[0]} failed ({done.describe_exit()})",
                list(done.command),
                done.output,
            )
        return done

    def shell(self, tokens: Sequence[str], timeout_s: float | None = None):
        """Runs a remote command given as tokens, each one shell-quoted.

        adb hands the remote side one string to ``sh -c``; quoting every
        token is what keeps a file name like ``a b;rm -rf x`` a file name.
        """
        return self.check("shell", shlex.join(tokens), timeout_s=timeout_s)

    def push(self, local: str, remote: str, timeout_s: float | None = None):
        """Copies a file to the device (sync protocol: no remote shell)."""
        return self.check("push", local, remote, timeout_s=timeout_s)

    def getprop(self, name: str) -> str:
        """A system property, e.g. ``ro.product.model``."""
        return self.shell(["getprop", name]).output.strip()
