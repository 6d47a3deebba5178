"""Candidate evaluations as Ray tasks: the ``Executor`` of a cluster.

``mnas-search --executor=ray`` keeps the controller, the journal and the work
directory in the search process (the Ray *driver*) and runs each candidate
evaluation as a Ray task asking for ``trial_resources`` (``CPU=2,GPU=1``,
custom resources), so Ray places it on a node that has them and, for a GPU
trial, makes only its GPUs visible (``CUDA_VISIBLE_DEVICES``; a CPU-only trial
sees none). Nothing assumes a shared filesystem: the task writes the exported
``.tflite`` into a temporary folder of its own node and returns its bytes with
the result; the driver writes them into the work directory (atomically) before
it reports the trial.

Faults. A trial whose node or worker process dies (node lost, out of memory,
crashed worker) is submitted again, up to ``trial_retries`` times, then fails
with the reason. A trial past ``trial_timeout_s`` (counted from its
submission) is cancelled and fails, as in the local pool, without a retry.
An exception of the evaluation itself fails the trial at once (it would fail
again). ``close`` (after Ctrl-C too) cancels every running task; the journal
still holds those trials as RUNNING and ``--resume`` re-runs them.

Ray is imported only here and only when an executor is made, so the default
search never needs it (``pip install 'mnas[ray]'``). Results travel as a JSON
string plus the model's bytes: no project object is serialized by Ray.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from mnas.io.atomic import write_bytes_atomic
from mnas.search.workers.pool import Outcome

#: How often the cluster's nodes are read again to size the free slots.
NODE_REFRESH_S = 2.0
_TRACEBACK_TAIL = 1500


class RayExecutorError(ValueError):
    """The cluster cannot run this search (no Ray, no node offers a trial's
    resources, no latency device)."""


def import_ray():
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayExecutorError(
            "--executor=ray needs Ray: pip install 'mnas[ray]'"
        ) from None
    return ray


def connect(address: str | None = None):
    """Connects this process to the cluster at ``address`` (``auto``,
    ``HOST:PORT``; None: ``RAY_ADDRESS`` or a new one-machine cluster) unless
    it is connected already; returns the ``ray`` module."""
    ray = import_ray()
    if not ray.is_initialized():
        # Workers' output stays in Ray's logs of their node (a failed trial's
        # error carries its traceback), not on the search's progress line.
        ray.init(address=address or None, logging_level="WARNING", log_to_driver=False)
    return ray


def ray_task_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """``ray.remote`` options asking for ``resources`` (``CPU``, ``GPU``,
    ``memory`` in bytes, custom names)."""
    custom = {k: v for k, v in resources.items() if k not in ("CPU", "GPU", "memory")}
    options: dict[str, Any] = {
        "num_cpus": resources.get("CPU", 0),
        "num_gpus": resources.get("GPU", 0),
    }
    if resources.get("memory"):
        options["memory"] = resources["memory"]
    if custom:
        options["resources"] = custom
    return options


def trial_env(resources: Mapping[str, float]) -> dict[str, str]:
    """Environment of a trial's worker process, set before anything imports
    TensorFlow: its CPU share as TensorFlow's thread count, and no GPU for a
    trial that asked for none (Ray masks the others only for GPU tasks). A
    distinct environment also gives GPU and CPU trials distinct Ray workers,
    so a worker whose TensorFlow saw no GPU never runs a GPU trial."""
    threads = max(1, math.floor(resources.get("CPU", 1) or 1))
    env = {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if not resources.get("GPU"):
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def slots_on(node_resources: Mapping[str, float], need: Mapping[str, float]) -> int:
    """How many trials needing ``need`` fit on a node offering
    ``node_resources`` at once."""
    fits = [
        math.floor(node_resources.get(name, 0.0) / amount + 1e-9)
        for name, amount in need.items()
        if amount > 0
    ]
    return max(0, min(fits)) if fits else 0


def _load(target: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"evaluation target must be MODULE:FUNCTION, got {target!r}")
    return getattr(importlib.import_module(module_name), function_name)


def evaluate_remotely(
    target: str | Callable[[dict[str, Any]], dict[str, Any]], task: dict[str, Any]
) -> tuple[str, bytes | None]:
    """Runs on a Ray worker: evaluates ``task`` with its ``.tflite`` written to
    a temporary folder of this node; returns the JSON reply and the model's
    bytes (None when there is no model)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    scratch = tempfile.mkdtemp(prefix="mnas-trial-")
    try:
        local = dict(task)
        name = os.path.basename(task.get("tflite_path") or "") or "model.tflite"
        local["tflite_path"] = os.path.join(scratch, name)
        try:
            evaluate = _load(target) if isinstance(target, str) else target
            result = evaluate(local)
            data = None
            if result.get("tflite_path"):
                with open(result["tflite_path"], "rb") as handle:
                    data = handle.read()
            reply = {"ok": True, "result": result, "node": node}
        except Exception as error:  # noqa: BLE001 - reported as a FAILED trial
            data = None
            reply = {
                "ok": False,
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc()[-_TRACEBACK_TAIL:],
                "node": node,
            }
        return json.dumps(reply), data
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def failure_reason(error: BaseException) -> tuple[str, bool]:
    """What a Ray error says happened to a trial, and whether running it
    again could help (the node or worker died under it) or not."""
    from ray import exceptions as rex

    if isinstance(error, rex.OutOfMemoryError):
        return "out of memory (Ray's memory monitor killed its worker)", True
    if isinstance(error, (rex.NodeDiedError, rex.LocalRayletDiedError)):
        return "node lost", True
    if isinstance(error, rex.WorkerCrashedError):
        return "worker crashed (killed, out of memory or its node lost)", True
    if isinstance(error, rex.ObjectLostError):
        return "result lost with its node", True
    if isinstance(error, rex.TaskCancelledError):
        return "cancelled", False
    return f"Ray error ({type(error).__name__})", False


@dataclasses.dataclass
class _Running:
    trial_id: int
    task: dict[str, Any]
    ref: Any  # ray.ObjectRef
    attempt: int
    submitted: float


class RayExecutor:
    """Runs ``target`` (``module:function``, or a function, e.g. a fake in
    tests) for each submitted task as a Ray task with ``resources``.

    At most ``max_concurrent`` trials run at once (None: as many as the alive
    nodes fit, read again every ``NODE_REFRESH_S``; nodes that join add
    slots, lost ones remove them). ``log`` receives one line per retry.
    """

    def __init__(
        self,
        target: str | Callable[[dict[str, Any]], dict[str, Any]],
        resources: Mapping[str, float],
        address: str | None = None,
        trial_timeout_s: float = 3600.0,
        trial_retries: int = 2,
        max_concurrent: int | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        if trial_retries < 0:
            raise ValueError(f"trial_retries must be >= 0, got {trial_retries}")
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        self._ray = connect(address)
        self.resources = {k: float(v) for k, v in resources.items()}
        self._target = target
        self._timeout = trial_timeout_s
        self.trial_retries = trial_retries
        self._max_concurrent = max_concurrent
        self._log = log
        options = ray_task_options(self.resources)
        self._remote = self._ray.remote(
            max_retries=0,  # retried here, where the reason is known
            retry_exceptions=False,
            runtime_env={"env_vars": trial_env(self.resources)},
            **options,
        )(evaluate_remotely)
        self._running: dict[Any, _Running] = {}  # by ObjectRef
        self._capacity = 0
        self._capacity_read = -math.inf
        self.retries = 0  # trials submitted again after losing their node
        self._starved = False  # said that no node fits a trial
        if self.capacity() == 0:
            raise RayExecutorError(
                f"no node of the Ray cluster offers a trial's resources "
                f"({describe_resources(self.resources)}); the nodes offer: "
                f"{self._describe_nodes()}"
            )

    # -- the cluster -------------------------------------------------------------
    def _alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self._ray.nodes() if n.get("Alive")]

    def _describe_nodes(self) -> str:
        nodes = self._alive_nodes()
        if not nodes:
            return "none is alive"
        return "; ".join(
            describe_resources(
                {k: v for k, v in n["Resources"].items() if not k.startswith("node:")}
            )
            for n in nodes
        )

    def capacity(self) -> int:
        """Trials the alive nodes run at once (capped by ``max_concurrent``)."""
        now = time.monotonic()
        if now - self._capacity_read >= NODE_REFRESH_S:
            self._capacity = sum(
                slots_on(n["Resources"], self.resources) for n in self._alive_nodes()
            )
            self._capacity_read = now
        if self._max_concurrent is not None:
            return min(self._capacity, self._max_concurrent)
        return self._capacity

    # -- Executor ------------------------------------------------------------------
    def free_slots(self) -> int:
        return max(0, self.capacity() - len(self._running))

    def busy(self) -> int:
        return len(self._running)

    def submit(self, trial_id: int, task: dict[str, Any]) -> None:
        self._start(trial_id, task, attempt=1)

    def _start(self, trial_id: int, task: dict[str, Any], attempt: int) -> None:
        ref = self._remote.remote(self._target, task)
        self._running[ref] = _Running(trial_id, task, ref, attempt, time.monotonic())

    def poll(self, timeout: float = 1.0) -> list[Outcome]:
        """Waits up to ``timeout`` seconds; returns finished trials (a lost
        trial is submitted again instead, until its retries are spent)."""
        if not self._running:
            if self.capacity() == 0 and not self._starved:
                self._log(
                    "no alive node offers a trial's resources "
                    f"({describe_resources(self.resources)}); waiting for nodes"
                )
            self._starved = self.capacity() == 0
            time.sleep(timeout)
            return []
        refs = list(self._running)
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # and everything else that is done by now
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        outcomes = [o for o in map(self._collect, ready) if o is not None]
        return outcomes + self._expire()

    def _collect(self, ref) -> Outcome | None:
        run = self._running.pop(ref)
        try:
            reply_text, data = self._ray.get(ref)
        except self._ray.exceptions.RayError as error:
            return self._lost(run, error)
        reply = json.loads(reply_text)
        node = reply.get("node")
        if not reply["ok"]:
            error = reply["error"]
            tail = reply.get("traceback", "").strip()
            return Outcome(
                run.trial_id,
                False,
                error=f"{error}\n{tail}" if tail else error,
                node=node,
            )
        result = dict(reply["result"])
        if data is not None:
            path = run.task["tflite_path"]
            write_bytes_atomic(path, data)
            result["tflite_path"] = path
            result["tflite_bytes"] = len(data)
        return Outcome(run.trial_id, True, result, node=node)

    def _lost(self, run: _Running, error: BaseException) -> Outcome | None:
        reason, retry = failure_reason(error)
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if retry and run.attempt <= self.trial_retries:
            self.retries += 1
            self._log(
                f"trial {run.trial_id}: {reason} on attempt {run.attempt}; "
                f"running it again (attempt {run.attempt + 1} of "
                f"{self.trial_retries + 1})"
            )
            self._start(run.trial_id, run.task, run.attempt + 1)
            return None
        spent = f" after {run.attempt} attempts" if retry else ""
        return Outcome(
            run.trial_id,
            False,
            error=f"trial {run.trial_id} failed{spent}: {reason}"
            + (f" ({type(error).__name__}: {detail})" if detail else ""),
        )

    def _expire(self) -> list[Outcome]:
        now = time.monotonic()
        outcomes = []
        for ref, run in list(self._running.items()):
            if now - run.submitted > self._timeout:
                del self._running[ref]
                self._ray.cancel(ref, force=True)
                outcomes.append(
                    Outcome(
                        run.trial_id,
                        False,
                        error=(
                            f"trial {run.trial_id} timed out after "
                            f"{self._timeout:g} s; its Ray task was cancelled"
                        ),
                    )
                )
        return outcomes

    def cancel(self) -> list[int]:
        """Cancels every running trial (their workers are killed); returns
        their ids. An extension of the ``Executor`` protocol."""
        cancelled = []
        for ref, run in list(self._running.items()):
            self._ray.cancel(ref, force=True)
            cancelled.append(run.trial_id)
        self._running.clear()
        return cancelled

    def close(self) -> None:
        """Cancels what still runs; the connection stays (Ray closes it at
        exit) for others of this process, such as a latency pool."""
        self.cancel()


def describe_resources(resources: Mapping[str, float]) -> str:
    """``CPU=2, GPU=1`` (memory in GiB)."""
    parts = []
    for name, amount in sorted(resources.items()):
        if name in ("memory", "object_store_memory"):
            parts.append(f"{name}={amount / 2**30:.1f}GiB")
        else:
            parts.append(f"{name}={amount:g}")
    return ", ".join(parts) or "nothing"
