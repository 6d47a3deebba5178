"""Latency devices of a Ray cluster: phones and quiet hosts as Ray resources.

A machine with phones joins the cluster declaring them, one resource per
serial (``ray start --address=HEAD:6379 --resources='{"phone:R58M1": 1,
"phone:R58M2": 1}'``) or a count (``--resources='{"phone": 2}'``); a host that
times models for the host backend declares a count too (``{"latency_host":
1}``, best with ``--num-cpus=0`` so no trial runs beside a timing). With
``--latency_resource=phone`` the search starts one actor per unit of that
resource: Ray places it on the node that declared the unit, and the actor
holds the unit (and, for a phone, its serial) for its life, so each phone
times one model at a time, over adb on the machine it is plugged into. With
a count, each actor claims one phone of its node that ``adb devices`` lists,
by a lock file no other actor of that machine can take.

``RayLatencyPool`` is a ``BatchBackend`` of ``mnas.search.scoring``: it spreads
a batch over its devices and answers one ``PoolOutcome`` per model. The driver
sends the model's bytes (no shared filesystem); the device writes them to a
temporary file and times it with the configured backend (with its cache, on
that machine). A phone that drops out (adb no longer lists it) or whose actor
dies leaves the pool and its model is timed on another device; a model that
fails on a device that is still there fails only that model. Every device
must be the same platform (``platform_key``: same backend, device model,
runtime and settings; a phone's serial may differ), checked when the pool
starts, so every latency of a search has one fingerprint.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from mnas.latency.config import LatencyConfig
from mnas.latency.pool import PoolOutcome
from mnas.latency.result import BackendFingerprint, LatencyResult
from mnas.search.scoring import describe_fingerprint, platform_key
from mnas.search.workers.ray_executor import RayExecutorError, connect

#: How long a latency device may take to start and reach its phone.
START_TIMEOUT_S = 120.0
#: Where the actors of one machine lock the phones they claimed.
LOCK_DIR = os.path.join(tempfile.gettempdir(), "mnas-phone-locks")


def _claim_phone() -> tuple[str, Any]:
    """A phone of this machine no other actor holds, and the open lock file
    that holds it (released when the process dies)."""
    import fcntl

    from mnas.latency.backends.adb import AdbClient

    os.makedirs(LOCK_DIR, exist_ok=True)
    usable = [d.serial for d in AdbClient().devices() if d.usable]
    for serial in usable:
        handle = open(os.path.join(LOCK_DIR, f"{serial}.lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return serial, handle
    raise RayExecutorError(
        f"no free phone on this node: `adb devices` lists {len(usable)} usable "
        "device(s) and all are held; declare as many phones as are plugged in"
    )


class LatencyUnit:
    """One latency device, as a Ray actor (``max_concurrency`` 1: one model
    at a time): a phone (``serial``) or this host."""

    def __init__(self, latency: dict[str, Any], serial: str | None) -> None:
        import ray

        from mnas.latency.config import backends_from_config

        config = LatencyConfig.from_dict(latency)
        self._lock = None
        if config.on_phone and serial is None:
            serial, self._lock = _claim_phone()
        self.serial = serial
        if serial is not None:
            config = dataclasses.replace(config, serials=(serial,))
        self.backend = backends_from_config(config)[0]
        self.node = ray.get_runtime_context().get_node_id()

    def describe(self) -> str:
        """JSON: node, serial and fingerprint (reaches the device now)."""
        return json.dumps(
            {
                "node": self.node,
                "serial": self.serial,
                "fingerprint": self.backend.fingerprint().to_dict(),
            }
        )

    def measure(self, data: bytes, name: str) -> str:
        """Times the model ``data``; JSON ``{"ok", "result" | "error",
        "device_lost"}``."""
        with tempfile.TemporaryDirectory(prefix="mnas-latency-") as scratch:
            path = os.path.join(scratch, os.path.basename(name) or "model.tflite")
            try:
                with open(path, "wb") as handle:
                    handle.write(data)
                result = self.backend.measure(path)
                return json.dumps({"ok": True, "result": result.to_dict()})
            except Exception as error:  # noqa: BLE001 - reported per model
                return json.dumps(
                    {
                        "ok": False,
                        "error": f"{type(error).__name__}: {error}",
                        "device_lost": not self._device_present(),
                    }
                )

    def _device_present(self) -> bool:
        """Whether this unit's phone is still usable (a host always is)."""
        if self.serial is None:
            return True
        from mnas.latency.backends.adb import AdbClient

        try:
            devices = AdbClient(self.serial).devices()
        except Exception:  # noqa: BLE001 - adb itself failing: treat as lost
            return False
        return any(d.serial == self.serial and d.usable for d in devices)


@dataclasses.dataclass
class _Unit:
    index: int
    name: str  # the resource it holds, e.g. phone:R58M1 or latency_host#0
    actor: Any
    node: str = ""
    serial: str | None = None
    fingerprint: BackendFingerprint | None = None


def latency_units(resource: str, cluster: dict[str, float]) -> list[tuple[str, dict]]:
    """The devices the cluster declares for ``resource``: one per
    ``resource:SERIAL`` key, else as many as the count of ``resource``;
    each as (name, the resources its actor asks for)."""
    per_serial = sorted(k for k in cluster if k.startswith(f"{resource}:"))
    if per_serial:
        return [(key, {key: 1}) for key in per_serial]
    count = int(cluster.get(resource, 0))
    return [(f"{resource}#{i}", {resource: 1}) for i in range(count)]


class RayLatencyPool:
    """Times models on the cluster's ``resource`` devices with ``latency``'s
    backend. A model is timed again elsewhere at most ``max_moves`` times
    when its device leaves the pool."""

    def __init__(
        self,
        latency: LatencyConfig,
        resource: str,
        address: str | None = None,
        max_moves: int = 2,
        log: Callable[[str], None] = print,
    ) -> None:
        if latency.serials:
            raise RayExecutorError(
                "--serial names phones of this machine; with --latency_resource "
                "the cluster's phone resources name them (leave --serial out)"
            )
        self._ray = connect(address)
        self.resource = resource
        self.max_moves = max_moves
        self._log = log
        declared = latency_units(resource, self._ray.cluster_resources())
        if not declared:
            raise RayExecutorError(
                f"no node of the Ray cluster declares the latency resource "
                f"{resource!r}: start the phone or latency hosts with ray start "
                f"--resources='{{\"{resource}\": N}}' (or one "
                f"'{{\"{resource}:SERIAL\": 1}}' per phone)"
            )
        actor_class = self._ray.remote(num_cpus=0, max_restarts=0)(LatencyUnit)
        payload = latency.to_dict()
        self.units: list[_Unit] = []
        for index, (name, resources) in enumerate(declared):
            serial = name.split(":", 1)[1] if ":" in name else None
            actor = actor_class.options(resources=resources).remote(payload, serial)
            self.units.append(_Unit(index, name, actor))
        self.retired: list[tuple[str, str]] = []  # (unit name, why)
        self._check_platform()

    def _check_platform(self) -> None:
        """Reaches every device; refuses devices of different platforms."""
        refs = [u.actor.describe.remote() for u in self.units]
        for unit, ref in zip(self.units, refs):
            try:
                info = json.loads(self._ray.get(ref, timeout=START_TIMEOUT_S))
            except self._ray.exceptions.RayError as error:
                self.close()
                cause = str(error).strip().splitlines()[-1] if str(error) else ""
                raise RayExecutorError(
                    f"latency device {unit.name} did not start: "
                    f"{cause or type(error).__name__}"
                ) from None
            unit.node = info["node"]
            unit.serial = info["serial"]
            unit.fingerprint = BackendFingerprint.from_dict(info["fingerprint"])
        first = self.units[0]
        self._fingerprint = first.fingerprint
        for unit in self.units[1:]:
            if platform_key(unit.fingerprint) != platform_key(first.fingerprint):
                self.close()
                raise RayExecutorError(
                    f"latency devices differ: {unit.name} is "
                    f"[{describe_fingerprint(unit.fingerprint)}] but {first.name} "
                    f"is [{describe_fingerprint(first.fingerprint)}]; every "
                    "latency of a search comes from one platform"
                )

    # -- the Backend and BatchBackend interfaces --------------------------------------
    def fingerprint(self) -> BackendFingerprint:
        """The first device's (all are the same platform)."""
        return self._fingerprint

    def describe(self) -> str:
        return (
            f"{len(self.units)} x {describe_fingerprint(self.fingerprint())} "
            f"(Ray resource {self.resource})"
        )

    def measure(self, tflite_path: str) -> LatencyResult:
        return self.measure_all([tflite_path])[0].unwrap()

    def measure_all(self, tflite_paths: Sequence[str]) -> list[PoolOutcome]:
        """Times every file once on some device; outcome i is path i's."""
        paths = [str(p) for p in tflite_paths]
        outcomes: list[PoolOutcome | None] = [None] * len(paths)
        moves = [0] * len(paths)
        todo = collections.deque(range(len(paths)))
        idle = list(self.units)
        busy: dict[Any, tuple[_Unit, int]] = {}
        while todo or busy:
            while todo and idle:
                index = todo.popleft()
                unit = idle.pop(0)
                try:
                    with open(paths[index], "rb") as handle:
                        data = handle.read()
                except OSError as error:
                    outcomes[index] = PoolOutcome(
                        index, paths[index], None, error=str(error)
                    )
                    idle.insert(0, unit)
                    continue
                name = os.path.basename(paths[index])
                busy[unit.actor.measure.remote(data, name)] = (unit, index)
            if not busy:
                break  # nothing left to time it on
            ready, _ = self._ray.wait(list(busy), num_returns=1)
            for ref in ready:
                unit, index = busy.pop(ref)
                try:
                    reply = json.loads(self._ray.get(ref))
                except self._ray.exceptions.RayError as error:
                    reply = {
                        "ok": False,
                        "error": f"its actor died ({type(error).__name__})",
                        "device_lost": True,
                    }
                if reply["ok"]:
                    result = LatencyResult.from_dict(reply["result"])
                    outcomes[index] = PoolOutcome(
                        index, paths[index], unit.index, result=result
                    )
                    idle.append(unit)
                elif reply.get("device_lost"):
                    self._retire(unit, reply["error"])
                    moves[index] += 1
                    if moves[index] > self.max_moves:
                        outcomes[index] = PoolOutcome(
                            index,
                            paths[index],
                            unit.index,
                            error=f"lost {moves[index]} latency devices while "
                            f"timing it; the last: {reply['error']}",
                        )
                    else:
                        todo.appendleft(index)
                else:
                    outcomes[index] = PoolOutcome(
                        index, paths[index], unit.index, error=reply["error"]
                    )
                    idle.append(unit)
        gone = "; ".join(f"{name}: {why}" for name, why in self.retired)
        return [
            outcome
            if outcome is not None
            else PoolOutcome(
                index,
                paths[index],
                None,
                error=f"not timed: every latency device left the pool ({gone})",
            )
            for index, outcome in enumerate(outcomes)
        ]

    def _retire(self, unit: _Unit, why: str) -> None:
        if unit in self.units:
            self.units.remove(unit)
            self.retired.append((unit.name, why))
            where = f"phone {unit.serial}" if unit.serial else unit.name
            self._log(
                f"latency: {where} on node {unit.node[:12]} left the pool ({why}); "
                f"{len(self.units)} device(s) remain"
            )
            with contextlib.suppress(Exception):
                self._ray.kill(unit.actor)

    def close(self) -> None:
        for unit in self.units:
            with contextlib.suppress(Exception):
                self._ray.kill(unit.actor)
        self.units = []
