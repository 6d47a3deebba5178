"""The search driver's overhead per trial on Ray, with a no-op evaluation.

A local Ray cluster (``ray.cluster_utils.Cluster``: a head without CPUs, then
1, 2 and 3 worker nodes of ``--cpus_per_node`` logical CPUs each, added one
at a time) runs ``mnas-search``'s loop (``Search`` with the ``RayExecutor``)
over ``--trials`` trials whose evaluation does nothing but return (and, with
``--model_kib``, send back a model of that size). Latency is a constant stand-in,
so every second the loop spends is the driver's or Ray's.

The driver's phases are timed by wrapping them: *propose* (the oracle's
next trial: controller sample, RUNNING record), *checkpoint* (the controller
checkpoint, saved every ``SearchConfig.checkpoint_every_updates`` updates),
*submit* (the Ray task), *collect* (``ray.get`` of a result and writing its
model into the work directory), *finish* (COMPLETED record, feedback to the
controller), *outputs* (best.json and pareto.png, written at most every
``--outputs_every_s`` as ``mnas-search --outputs_interval_s`` does;
TensorBoard, progress line) and *wait* (blocked in ``ray.wait`` or idle: not
overhead). Overhead per trial d = (wall time - wait) / trials;
a driver spending d per trial keeps T / d trials busy when one trial takes T
seconds, and finishes at most 1 / d trials per second.

  python benchmarks/ray_overhead.py --trials 40 --nodes 1,2,3 \
      --controllers reinforce,random --cpus_per_node 2
"""

from __future__ import annotations

import argparse
import collections
import functools
import io
import os
import shlex
import shutil
import sys
import tempfile
import time
from typing import Any

OBJECT_STORE = 80 * 2**20


def no_op_trial(task: dict[str, Any], model_bytes: int = 0) -> dict[str, Any]:
    """Returns at once (with a zero-filled "model" of ``model_bytes``)."""
    path = None
    if model_bytes:
        path = task["tflite_path"]
        with open(path, "wb") as handle:
            handle.write(bytes(model_bytes))
    return {"accuracy": 0.5, "num_classes": 10, "tflite_path": path, "timings": {}}


class ConstantLatency:
    def measure(self, tflite_path):
        from mnas.testing.fakes import FakeLatency

        return FakeLatency(5.0)


class PhaseTimer:
    """Seconds spent in each wrapped method, exclusive of wrapped methods it
    calls (a checkpoint inside a proposal counts as checkpoint)."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self._stack: list[list[float]] = []  # [start, time in nested phases]
        self._wrapped: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)
        self._wrapped.append((owner, name, original))

        @functools.wraps(original)
        def timed(*args, **kwargs):
            frame = [time.perf_counter(), 0.0]
            self._stack.append(frame)
            try:
                return original(*args, **kwargs)
            finally:
                self._stack.pop()
                elapsed = time.perf_counter() - frame[0]
                self.seconds[phase] += elapsed - frame[1]
                if self._stack:
                    self._stack[-1][1] += elapsed

        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._wrapped):
            setattr(owner, name, original)
        self._wrapped.clear()


def install(timer: PhaseTimer) -> None:
    import ray

    from mnas.search import runner
    from mnas.search.oracle import Oracle
    from mnas.search.workers import ray_executor
    from mnas.search.workers.ray_executor import RayExecutor

    timer.wrap(Oracle, "next_trial", "propose")
    timer.wrap(Oracle, "save", "checkpoint")
    timer.wrap(RayExecutor, "submit", "submit")
    timer.wrap(RayExecutor, "_collect", "collect")
    timer.wrap(ray_executor, "write_bytes_atomic", "write model")
    timer.wrap(runner.Search, "_finish", "finish")
    timer.wrap(ray, "wait", "wait")
    timer.wrap(runner.SearchOutputs, "on_trial_end", "best+pareto")
    timer.wrap(runner.TensorBoardLogger, "on_trial_end", "tensorboard")
    timer.wrap(runner.SearchDisplay, "on_trial_end", "tensorboard")


def wait_cost(pending: int, repeats: int = 20) -> float:
    """Median seconds of one ``ray.wait`` (what each poll does) over
    ``pending`` refs of tasks that never run (they ask for a resource no node
    has), as with that many trials in flight."""
    import ray

    @ray.remote(num_cpus=0, resources={"nowhere": 1})
    def never() -> None:
        return None

    refs = [never.remote() for _ in range(pending)]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ray.wait(refs, num_returns=1, timeout=0)
        times.append(time.perf_counter() - start)
    for ref in refs:
        ray.cancel(ref)
    return sorted(times)[len(times) // 2]


def executor_only(trials: int, model_bytes: int) -> tuple[float, float, int]:
    """``trials`` no-op trials straight through the executor, every slot kept
    full: (wall s, seconds blocked in ray.wait, slots)."""
    import ray

    from mnas.search.workers.ray_executor import RayExecutor

    target = functools.partial(no_op_trial, model_bytes=model_bytes)
    executor = RayExecutor(target, {"CPU": 1}, log=lambda line: None)
    scratch = tempfile.mkdtemp(prefix="ray-overhead-models-")
    waited = 0.0
    original_wait = ray.wait

    def timed_wait(*args, **kwargs):
        nonlocal waited
        start = time.perf_counter()
        try:
            return original_wait(*args, **kwargs)
        finally:
            waited += time.perf_counter() - start

    def task(trial_id: int) -> dict[str, Any]:
        return {"tflite_path": os.path.join(scratch, f"trial-{trial_id}.tflite")}

    for warm in range(executor.capacity()):  # start the workers first
        executor.submit(warm, task(warm))
    done = 0
    while done < executor.capacity():
        done += len(executor.poll(1.0))
    ray.wait = timed_wait
    try:
        start = time.perf_counter()
        submitted = finished = 0
        while finished < trials:
            while executor.free_slots() and submitted < trials:
                executor.submit(submitted, task(submitted))
                submitted += 1
            finished += len(executor.poll(1.0))
        wall = time.perf_counter() - start
    finally:
        ray.wait = original_wait
        shutil.rmtree(scratch, ignore_errors=True)
    return wall, waited, executor.capacity()


def run_search(
    work_dir: str,
    trials: int,
    controller: str,
    model_bytes: int,
    timer: PhaseTimer,
    outputs_every_s: float,
):
    from mnas.controller import ControllerConfig
    from mnas.search.config import SearchConfig
    from mnas.search.runner import Search
    from mnas.search.workers.ray_executor import RayExecutor

    config = SearchConfig(
        work_dir=work_dir,
        num_trials=trials,
        controller_kind=controller,
        controller=ControllerConfig(batch_size=4),
        executor="ray",
        outputs_interval_s=outputs_every_s,
    )
    target = functools.partial(no_op_trial, model_bytes=model_bytes)
    executor = RayExecutor(target, {"CPU": 1}, log=lambda line: None)
    # Start the workers first: the loop is measured warm.
    for trial_id in range(executor.capacity()):
        executor.submit(trial_id, {"tflite_path": os.path.join(work_dir, "w")})
    done = 0
    while done < executor.capacity():
        done += len(executor.poll(1.0))
    search = Search(
        config,
        executor,
        ConstantLatency(),
        log=lambda line: None,
        progress_stream=io.StringIO(),
    )
    slots = executor.capacity()
    install(timer)
    try:
        start = time.perf_counter()
        search.run()
        return time.perf_counter() - start, slots
    finally:
        timer.restore()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--nodes", default="1,2,3")
    parser.add_argument("--controllers", default="reinforce,random")
    parser.add_argument("--cpus_per_node", type=int, default=2)
    parser.add_argument("--model_kib", type=int, default=0)
    parser.add_argument("--bare_trials", type=int, default=200)
    parser.add_argument(
        "--outputs_every_s",
        type=float,
        default=15.0,
        help="write best.json/pareto.png at most this often (mnas-search "
        "--outputs_interval_s; 0: after every trial)",
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import ray
    from ray.cluster_utils import Cluster

    model_bytes = args.model_kib * 1024
    node_counts = [int(n) for n in args.nodes.split(",")]
    controllers = args.controllers.split(",")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": OBJECT_STORE},
    )
    ray.init(address=cluster.address, logging_level="WARNING")
    root = tempfile.mkdtemp(prefix="ray-overhead-")
    rows = []
    bare = []
    try:
        for nodes in node_counts:
            while len(cluster.worker_nodes) < nodes:
                cluster.add_node(
                    num_cpus=args.cpus_per_node, object_store_memory=OBJECT_STORE
                )
            cluster.wait_for_nodes()
            bare.append((nodes, *executor_only(args.bare_trials, model_bytes)))
            for controller in controllers:
                timer = PhaseTimer()
                work_dir = os.path.join(root, f"{controller}-{nodes}")
                wall, slots = run_search(
                    work_dir,
                    args.trials,
                    controller,
                    model_bytes,
                    timer,
                    args.outputs_every_s,
                )
                rows.append((nodes, slots, controller, wall, dict(timer.seconds)))
                print(f"done: {nodes} node(s), {controller}", file=sys.stderr)
        waits = [(n, wait_cost(n)) for n in (10, 100, 1000)]
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    print_tables(args, rows, bare, waits)


def print_tables(args, rows, bare, waits) -> None:
    n = args.trials
    phases = (
        "propose",
        "checkpoint",
        "submit",
        "collect",
        "write model",
        "finish",
        "best+pareto",
        "tensorboard",
    )
    print(f"Search loop, {n} no-op trials per row (ms per trial, exclusive):\n")
    print(
        "| nodes | slots | controller | wall s | trials/s | d ms | "
        + " | ".join(phases)
        + " | other | wait |"
    )
    print("|" + "---|" * (8 + len(phases)))
    for nodes, slots, controller, wall, seconds in rows:
        busy = wall - seconds.get("wait", 0.0)
        other = busy - sum(seconds.get(p, 0.0) for p in phases)
        cells = [f"{1000 * seconds.get(p, 0.0) / n:.1f}" for p in phases]
        print(
            f"| {nodes} | {slots} | {controller} | {wall:.1f} | {n / wall:.2f} | "
            f"{1000 * busy / n:.0f} | "
            + " | ".join(cells)
            + f" | {1000 * other / n:.1f} | {1000 * seconds.get('wait', 0.0) / n:.1f} |"
        )
    m = args.bare_trials
    print(f"\nExecutor alone, {m} no-op trials per row, every slot kept full:\n")
    print("| nodes | slots | wall s | trials/s | driver ms/trial | wait ms/trial |")
    print("|---|---|---|---|---|---|")
    for nodes, wall, waited, slots in bare:
        print(
            f"| {nodes} | {slots} | {wall:.1f} | {m / wall:.1f} | "
            f"{1000 * (wall - waited) / m:.1f} | {1000 * waited / m:.1f} |"
        )
    print("\nOne poll's ray.wait with this many trials in flight:\n")
    print("| trials in flight | ray.wait ms (median of 20) |")
    print("|---|---|")
    for pending, seconds in waits:
        print(f"| {pending} | {1000 * seconds:.2f} |")
    load = os.getloadavg()
    print(
        f"\n{args.cpus_per_node} logical CPUs per node; model "
        f"{args.model_kib} KiB; best.json/pareto.png "
        + (
            f"at most every {args.outputs_every_s:g} s"
            if args.outputs_every_s
            else "after every trial"
        )
        + f"; load average at the end {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs."
    )
    print("command: python " + shlex.join(sys.argv))


if __name__ == "__main__":
    main()
