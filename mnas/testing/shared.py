"""Weight-sharing evaluation on the tiny space, for tests and the crash driver:
a config, a stand-in for the standalone verification and a fake latency
backend that times any file."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from mnas.io.atomic import write_bytes_atomic
from mnas.search_space import ArchSpec
from mnas.testing.dnas import TINY_SPACE


def tiny_shared_config(work_dir: str, num_trials: int = 12, **changes):
    """A shared search of the tiny space: 16 px digits, small batches, a
    checkpoint every 4 trials, the controller from trial 3 on."""
    from mnas.controller import ControllerConfig
    from mnas.search.config import SearchConfig
    from mnas.search.reward import RewardConfig
    from mnas.search.shared.config import SharedConfig
    from mnas.train.data import DataConfig
    from mnas.train.proxy import TrainerConfig

    values: dict[str, Any] = dict(
        work_dir=work_dir,
        num_trials=num_trials,
        space=TINY_SPACE.name,
        controller_kind="reinforce",
        controller=ControllerConfig(batch_size=3, hidden_size=16),
        reward=RewardConfig("absolute", target_ms=1.0),
        data=DataConfig(resolution=16, max_train_examples=200, max_eval_examples=64),
        trainer=TrainerConfig(epochs=1, steps_per_epoch=2, bn_recalibration_images=0),
        deployment_resolution=TINY_SPACE.resolution,
        latency_mode="verified",
        lut_path="synthetic",
        top_k=2,
        evaluation="shared",
        shared=SharedConfig(
            batch_size=8,
            eval_batch_size=16,
            rl_delay=0.25,
            ops_warmup=0.25,
            filters_warmup=0.25,
            checkpoint_every=4,
            rescore=4,
        ),
    )
    values.update(changes)
    return SearchConfig(**values)


def fake_standalone(task: dict[str, Any]) -> dict[str, Any]:
    """Stands for ``evaluate_candidate``: accuracy from the architecture's
    widths, a "model" file holding its block strings."""
    spec = ArchSpec.from_dict(task["arch"])
    widths = [b.output_filters for b in spec.blocks]
    accuracy = 0.5 + 0.01 * (sum(widths) % 40)
    payload = json.dumps({"blocks": list(spec.block_strings)}).encode()
    write_bytes_atomic(task["tflite_path"], payload)
    return {"accuracy": accuracy, "tflite_path": task["tflite_path"], "timings": {}}


@dataclasses.dataclass(frozen=True)
class _Latency:
    median_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "backend": "file-size"}


class FileSizeBackend:
    """Latency = 1 ms + 1 ms per kilobyte of the file."""

    def measure(self, path: str) -> _Latency:
        return _Latency(1.0 + os.path.getsize(path) / 1000.0)
