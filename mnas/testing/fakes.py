"""Fast stand-ins for the trainer and the latency backend.

For search-loop tests and dry runs only: the accuracy is a fixed function of the
actions (how many match a hidden target) and the "latency" is read back from a
small file the fake evaluator writes in place of a ``.tflite``. The real trainer,
converter and LiteRT timing are tested on their own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import numpy as np

from mnas.io.atomic import write_bytes_atomic
from mnas.search_space import ArchSpec, get_search_space


def hidden_target(num_decisions: int = 42, seed: int = 1234) -> tuple[int, ...]:
    space = get_search_space("mnasnet")
    return space.sample(np.random.default_rng(seed))[:num_decisions]


def fake_evaluate(task: dict[str, Any]) -> dict[str, Any]:
    """Accuracy = 0.3 + 0.6 * fraction of actions equal to the hidden target.

    ``task["fake"]`` may hold ``sleep_s`` (to widen the window for kill tests),
    ``fail_trials`` (ids that raise) and ``crash_trials`` (ids that exit the
    process, as a segfaulting converter would).
    """
    options = task.get("fake", {})
    trial_id = task["trial_id"]
    if trial_id in options.get("crash_trials", ()):
        os._exit(11)
    if trial_id in options.get("fail_trials", ()):
        raise FloatingPointError(f"loss became NaN in epoch 1 (fake trial {trial_id})")
    if options.get("sleep_s"):
        time.sleep(options["sleep_s"])
    space = get_search_space("mnasnet")
    actions = space.encode(ArchSpec.from_dict(task["arch"]))
    target = hidden_target()
    accuracy = 0.3 + 0.6 * float(np.mean([a == t for a, t in zip(actions, target)]))
    payload = json.dumps({"actions": list(actions)})
    write_bytes_atomic(task["tflite_path"], payload.encode())
    return {
        "accuracy": accuracy,
        "tflite_path": task["tflite_path"],
        "timings": {"train_s": 0.0},
    }


@dataclasses.dataclass(frozen=True)
class FakeLatency:
    median_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "backend": "fake"}


class FakeLatencyBackend:
    """Latency = 2 ms + 0.25 ms per unit of summed actions."""

    def measure(self, tflite_path: str) -> FakeLatency:
        with open(tflite_path, encoding="utf-8") as handle:
            actions = json.load(handle)["actions"]
        return FakeLatency(2.0 + 0.25 * float(sum(actions)))
