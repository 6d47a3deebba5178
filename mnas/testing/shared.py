"""Weight-sharing evaluation on the micro space, for tests and the crash
driver: a config, a stand-in for the standalone verification, a fake latency
backend that times any file, and a driver.

Usage: python -m mnas.testing.shared WORK_DIR NUM_TRIALS [--resume]
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from mnas.io.atomic import write_bytes_atomic
from mnas.search_space import ArchSpec
from mnas.testing.dnas import MICRO_SPACE


def tiny_shared_config(work_dir: str, num_trials: int = 12, **changes):
    """A shared search of the micro space: 16 px digits, small batches, a
    checkpoint every 4 trials, the controller after a quarter of the trials."""
    from mnas.controller import ControllerConfig
    from mnas.search.config import SearchConfig
    from mnas.search.reward import RewardConfig
    from mnas.search.shared.config import SharedConfig
    from mnas.train.data_config import DataConfig
    from mnas.train.proxy_config import TrainerConfig

    values: dict[str, Any] = dict(
        work_dir=work_dir,
        num_trials=num_trials,
        space=MICRO_SPACE.name,
        controller_kind="reinforce",
        controller=ControllerConfig(batch_size=3, hidden_size=16),
        reward=RewardConfig("absolute", target_ms=1.0),
        data=DataConfig(resolution=16, max_train_examples=200, max_eval_examples=64),
        trainer=TrainerConfig(epochs=1, steps_per_epoch=2, bn_recalibration_images=0),
        deployment_resolution=MICRO_SPACE.resolution,
        outputs_interval_s=60.0,
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


def tiny_shared_search(config, resume: bool = False, callbacks=(), log=print):
    """``Search`` of ``config`` (from ``tiny_shared_config``) over the micro
    space, with the synthetic table, ``fake_standalone`` and file-size timing."""
    from mnas.search.runner import Search
    from mnas.search.workers.pool import InlinePool
    from mnas.testing.dnas import micro_latency
    from mnas.train.data import load_proxy_data

    return Search(
        config,
        InlinePool(fake_standalone),
        FileSizeBackend(),
        resume=resume,
        predictor=micro_latency()[1],
        callbacks=callbacks,
        data=load_proxy_data(config.data),
        space=MICRO_SPACE,
        log=log,
    )


class FakeSharedWeights:
    """Stands for ``SharedWeights`` without TensorFlow: a "weight" that is a
    hash chain of the steps taken, in order, checkpointed as JSON. A resumed
    search whose replay skipped, repeated or reordered a step ends with
    another chain than an uninterrupted one."""

    FILE = "fake_weights.json"

    def __init__(self, space, data, config, num_trials, seed=0, checkpoint_dir=None):
        import hashlib

        self._hash = hashlib.sha256
        self.space = space
        self.seed = seed
        self.path = None
        self.chain = "start"
        self.trained = 0
        self.checkpointed = 0
        self.steps: list[int] = []  # trial ids stepped in this process
        if checkpoint_dir is not None:
            os.makedirs(checkpoint_dir, exist_ok=True)
            self.path = os.path.join(checkpoint_dir, self.FILE)
            if os.path.exists(self.path):
                with open(self.path) as handle:
                    state = json.load(handle)
                self.chain, self.trained = state["chain"], state["trained"]
                self.checkpointed = self.trained

    def save(self, trained: int) -> None:
        self.trained = self.checkpointed = trained
        if self.path is not None:
            payload = json.dumps({"chain": self.chain, "trained": trained}).encode()
            write_bytes_atomic(self.path, payload)

    def step(self, trial_id, actions, score=True):
        from mnas.search.shared.weights import StepResult

        if trial_id != self.trained:
            raise AssertionError(f"step of trial {trial_id}, expected {self.trained}")
        text = f"{self.chain}|{trial_id}|{list(actions)}".encode()
        self.chain = self._hash(text).hexdigest()
        self.trained = trial_id + 1
        self.steps.append(trial_id)
        return StepResult(
            loss=1.0,
            train_accuracy=0.5,
            accuracy=self.score(actions) if score else None,
            learning_rate=0.1,
            widened_ops=0,
            widened_widths=0,
            timings={},
        )

    def score(self, actions) -> float:
        """Rewards the first choice of every decision, so a controller learns."""
        return sum(a == 0 for a in actions) / len(actions)


def main(argv: list[str]) -> int:
    work_dir, num_trials = argv[1], int(argv[2])
    config = tiny_shared_config(work_dir, num_trials)
    search = tiny_shared_search(
        config, resume="--resume" in argv, log=lambda line: None
    )
    search.run()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
