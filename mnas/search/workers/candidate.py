"""Evaluates one candidate: build, proxy-train, rebuild at the deployment
resolution with the trained weights, and export ``.tflite``.

Runs inside a worker process (``mnas.search.workers.worker``), so its inputs and
outputs are JSON-safe dicts. Latency is measured by the search process, which
owns the latency backends, their cache and the device pool. It also owns the
work directory: in a ``SubprocessPool`` the task's ``tflite_path`` points into
the pool's staging folder, and the search process moves the file into the
work directory when the trial is reported done, so a worker outliving a
killed search could not write there.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from mnas.search_space import ArchSpec

#: What a worker process runs for each trial (``module:function``).
CANDIDATE_TARGET = "mnas.search.workers.candidate:evaluate_candidate"

_DATA_CACHE: dict[str, Any] = {}


@dataclasses.dataclass(frozen=True)
class EvalTask:
    """Everything a worker needs to evaluate one trial."""

    trial_id: int
    arch: dict[str, Any]
    data: dict[str, Any]
    trainer: dict[str, Any]
    deployment_resolution: int
    tflite_path: str
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalTask:
        return cls(**data)


def _proxy_data(data_config: dict[str, Any]):
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig

    key = json.dumps(data_config, sort_keys=True)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = load_proxy_data(DataConfig(**data_config))
    return _DATA_CACHE[key]


def export_trained(spec: ArchSpec, model, resolution: int, path: str) -> int:
    """Writes ``model``'s trained weights, rebuilt at ``resolution``, as float
    ``.tflite`` at ``path`` (atomically); returns its size in bytes.

    The network is fully convolutional up to global pooling, so weights trained
    at the proxy resolution fit the same architecture at the deployment one.
    """
    from mnas.latency.export import export_to_file

    exported = export_to_file(spec, path, resolution=resolution, weights_from=model)
    return exported.size_bytes


def evaluate_candidate(task_dict: dict[str, Any]) -> dict[str, Any]:
    """The real evaluation. Raises ``TrainingDivergedError`` for NaN candidates."""
    import keras

    from mnas.model.builder import build_model
    from mnas.train.proxy import train_and_evaluate
    from mnas.train.proxy_config import TrainerConfig

    task = EvalTask.from_dict(task_dict)
    spec = ArchSpec.from_dict(task.arch)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    data = _proxy_data(task.data)
    timings["data_s"] = time.perf_counter() - start

    keras.utils.set_random_seed(task.seed)
    start = time.perf_counter()
    model = build_model(spec, data.image_shape, data.num_classes)
    timings["build_s"] = time.perf_counter() - start

    trainer_config = TrainerConfig(**task.trainer)
    result = train_and_evaluate(model, data, trainer_config)
    timings["train_s"] = result.wall_time_s

    start = time.perf_counter()
    size = export_trained(spec, model, task.deployment_resolution, task.tflite_path)
    timings["export_s"] = time.perf_counter() - start
    keras.backend.clear_session()
    return {
        "accuracy": float(result.accuracy),
        "loss": float(result.loss),
        "epochs": int(result.epochs),
        "tflite_path": task.tflite_path,
        "tflite_bytes": size,
        "num_classes": int(data.num_classes),
        "timings": timings,
    }
