"""The search driver's overhead per trial on Ray, with a no-op evaluation.

A local Ray cluster (``ray.cluster_utils.Cluster``: a head without CPUs, then
1, 2 and 3 worker nodes of ``--cpus_per_node`` logical CPUs each, added one
at a time) runs ``mnas-search``'s loop (``Search`` with the ``RayExecutor``)
over ``--trials`` trials whose evaluation does nothing but return (and, with
``--model_kib``, send back a model of that size). Latency is a constant stand-in,
so every second the loop spends is the driver's or Ray's.

The driver's phases are timed by wrapping them: *propose* (the oracle's
next trial: controller sample, controller checkpoint, RUNNING record),
*submit* (the Ray task), *collect* (``ray.get`` of a result and writing its
model into the work directory), *finish* (COMPLETED record, feedback to the
controller, checkpoint), *outputs* (the per-trial callbacks: best.json,
pareto.png, TensorBoard, progress line) and *wait* (blocked in ``ray.wait``
or idle: not overhead). Overhead per trial d = (wall time - wait) / trials;
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
    """Seconds spent in each wrapped method."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start

        setattr(owner, name, timed)


def install(timer: PhaseTimer) -> None:
    import ray

    from mnas.search import runner
    from mnas.search.oracle import Oracle
    from mnas.search.workers.ray_executor import RayExecutor

    timer.wrap(Oracle, "next_trial", "propose")
    timer.wrap(RayExecutor, "submit", "submit")
    timer.wrap(RayExecutor, "_collect", "collect")
    timer.wrap(runner.Search, "_finish", "finish")
    timer.wrap(ray, "wait", "wait")
    for callback in (runner.SearchOutputs, runner.TensorBoardLogger):
        timer.wrap(callback, "on_trial_end", "outputs")
    timer.wrap(runner.SearchDisplay, "on_trial_end", "outputs")


def run_search(work_dir: str, trials: int, controller: str, model_bytes: int):
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
    start = time.perf_counter()
    search.run()
    return time.perf_counter() - start, slots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--nodes", default="1,2,3")
    parser.add_argument("--controllers", default="reinforce,random")
    parser.add_argument("--cpus_per_node", type=int, default=2)
    parser.add_argument("--model_kib", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import ray
    from ray.cluster_utils import Cluster

    node_counts = [int(n) for n in args.nodes.split(",")]
    controllers = args.controllers.split(",")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": OBJECT_STORE},
    )
    ray.init(address=cluster.address, logging_level="WARNING")
    timer = PhaseTimer()
    install(timer)
    root = tempfile.mkdtemp(prefix="ray-overhead-")
    rows = []
    try:
        for nodes in node_counts:
            while len(cluster.worker_nodes) < nodes:
                cluster.add_node(
                    num_cpus=args.cpus_per_node, object_store_memory=OBJECT_STORE
                )
            cluster.wait_for_nodes()
            for controller in controllers:
                timer.seconds.clear()
                work_dir = os.path.join(root, f"{controller}-{nodes}")
                wall, slots = run_search(
                    work_dir, args.trials, controller, args.model_kib * 1024
                )
                rows.append((nodes, slots, controller, wall, dict(timer.seconds)))
                print(f"done: {nodes} node(s), {controller}", file=sys.stderr)
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)

    n = args.trials
    phases = ("propose", "submit", "collect", "finish", "outputs")
    print(
        "| nodes | slots | controller | wall s | trials/s | overhead d ms/trial | "
        + " | ".join(f"{p} ms" for p in phases)
        + " | wait ms | trials busy at T = 60 s (T/d) |"
    )
    print("|" + "---|" * (10 + len(phases) - 1))
    for nodes, slots, controller, wall, seconds in rows:
        busy = wall - seconds.get("wait", 0.0)
        d = busy / n
        cells = [f"{1000 * seconds.get(p, 0.0) / n:.1f}" for p in phases]
        print(
            f"| {nodes} | {slots} | {controller} | {wall:.1f} | {n / wall:.2f} | "
            f"{1000 * d:.0f} | "
            + " | ".join(cells)
            + f" | {1000 * seconds.get('wait', 0.0) / n:.1f} | {60 / d:.0f} |"
        )
    load = os.getloadavg()
    print(
        f"\n{n} trials per row; {args.cpus_per_node} logical CPUs per node; "
        f"model {args.model_kib} KiB; load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs."
    )
    print("command: python " + shlex.join(sys.argv))


if __name__ == "__main__":
    main()
