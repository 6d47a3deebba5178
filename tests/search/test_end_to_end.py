"""The search with nothing faked: real proxy trainer on the embedded digits,
real TFLite export and real LiteRT host timing, in worker subprocesses."""

import json
import os

from mnas.controller import ControllerConfig
from mnas.latency.backends.host import HostBackend
from mnas.search.reward import RewardConfig
from mnas.search.runner import Search, SearchConfig
from mnas.search.trial import Journal
from mnas.search.workers.pool import SubprocessPool
from mnas.train.data_config import DataConfig
from mnas.train.proxy_config import TrainerConfig


def test_real_search_produces_every_output(tmp_path):
    config = SearchConfig(
        work_dir=str(tmp_path),
        num_trials=2,
        num_workers=1,
        controller_kind="reinforce",
        controller=ControllerConfig(batch_size=2),
        reward=RewardConfig("soft", target_ms=2.0),
        data=DataConfig(resolution=16, max_train_examples=256, batch_size=64),
        trainer=TrainerConfig(epochs=1),
        deployment_resolution=64,
        top_k=1,
    )
    pool = SubprocessPool(
        "mnas.search.workers.candidate:evaluate_candidate", 1, str(tmp_path / "workers")
    )
    backend = HostBackend(num_runs=10, min_secs=0.1, warmup_min_secs=0.05)
    best = Search(config, pool, backend).run()

    latest = Journal.open(str(tmp_path / "trials.jsonl")).latest()
    assert sorted(latest) == [0, 1]
    for record in latest.values():
        assert record.status == "COMPLETED", record.error
        assert 0.0 <= record.accuracy <= 1.0
        latency = record.latency
        assert record.latency_ms == latency["median_ms"]
        assert latency["min_ms"] <= latency["median_ms"] <= latency["max_ms"]
        assert latency["min_ms"] > 0 and latency["runs"] >= 10
        assert record.latency["fingerprint"]["backend"] == "host"
        assert record.timings["train_s"] > 0 and record.timings["export_s"] > 0
    assert len(best) == 1 and best[0]["reward"] == max(
        r.reward for r in latest.values()
    )
    for name in ("config.json", "best.json", "pareto.png", "trials.jsonl"):
        assert (tmp_path / name).is_file(), name
    assert os.listdir(tmp_path / "tensorboard")
    assert os.listdir(tmp_path / "controller")
    models = os.listdir(tmp_path / "models")
    assert models == [os.path.basename(best[0]["tflite"])]
    with open(best[0]["tflite"], "rb") as handle:
        assert handle.read(8)[4:8] == b"TFL3"  # a real flatbuffer
    with open(tmp_path / "best.json") as handle:
        assert json.load(handle)["best"][0]["block_strings"] == best[0]["block_strings"]
