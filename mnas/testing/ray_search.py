"""A small search on a Ray cluster with fakes, for the Ray tests; the crash
test kills and restarts it as a process.

Usage: python -m mnas.testing.ray_search WORK_DIR ADDRESS NUM_TRIALS SLEEP_S
[--resume]
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any

from mnas.testing.fakes import fake_evaluate


def fake_trial(options: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """``fake_evaluate`` with ``options`` (its ``fake`` dict: ``sleep_s``,
    ``fail_trials``, ``crash_trials``); with ``marks`` (a folder) it also
    writes ``<trial>.<pid>.start`` and ``.end`` files holding the node id, so
    a test sees where a trial started and whether it ended."""
    marks = options.get("marks")
    stem = None
    if marks:
        import ray

        node = ray.get_runtime_context().get_node_id()
        stem = os.path.join(marks, f"{task['trial_id']}.{os.getpid()}")
        with open(stem + ".start", "w") as handle:
            handle.write(node)
    result = fake_evaluate({**task, "fake": options})
    if stem:
        with open(stem + ".end", "w") as handle:
            handle.write(json.dumps(time.time()))
    return result


def search_config(work_dir: str, num_trials: int, **fields: Any):
    from mnas.controller import ControllerConfig
    from mnas.search.config import SearchConfig
    from mnas.search.reward import RewardConfig

    return SearchConfig(
        work_dir=work_dir,
        num_trials=num_trials,
        controller_kind="reinforce",
        controller=ControllerConfig(batch_size=3),
        reward=RewardConfig("soft", target_ms=10.0),
        executor="ray",
        **fields,
    )


def main() -> None:
    from mnas.search.runner import Search
    from mnas.search.workers.ray_executor import RayExecutor
    from mnas.testing.fakes import FakeLatencyBackend

    work_dir, address = sys.argv[1], sys.argv[2]
    num_trials, sleep_s = int(sys.argv[3]), float(sys.argv[4])
    resume = "--resume" in sys.argv
    config = search_config(work_dir, num_trials, ray_address=address)
    target = functools.partial(fake_trial, {"sleep_s": sleep_s})
    executor = RayExecutor(
        target, config.trial_resource_dict, address=address, log=print
    )
    search = Search(config, executor, FakeLatencyBackend(), resume=resume)
    search.run()


if __name__ == "__main__":
    main()
