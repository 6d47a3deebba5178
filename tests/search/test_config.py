"""SearchConfig: typed parts, config.json round trip, the pre-restructure form."""

import json

import pytest

from mnas.controller import ControllerConfig
from mnas.latency.config import LatencyConfig
from mnas.search.config import SearchConfig, SearchConfigError, canonical_config_dict
from mnas.search.reward import RewardConfig
from mnas.train.data_config import DataConfig
from mnas.train.proxy_config import TrainerConfig


def _typed():
    return SearchConfig(
        work_dir="w",
        num_trials=3,
        controller=ControllerConfig(batch_size=2, seed=4),
        reward=RewardConfig("hard", target_ms=9.0),
        data=DataConfig(resolution=16, seed=4),
        trainer=TrainerConfig(epochs=2, seed=4),
        latency=LatencyConfig(num_threads=2, cache_path="/tmp/c.sqlite"),
        seed=4,
    )


def test_config_json_round_trips_every_typed_part():
    config = _typed()
    data = json.loads(json.dumps(config.to_dict()))
    assert data["latency"]["num_threads"] == 2 and data["data"]["resolution"] == 16
    assert "latency_options" not in data and "latency_backend" not in data
    assert SearchConfig.from_dict(data) == config


def test_the_controller_is_seeded_by_the_search_seed_unless_given():
    assert SearchConfig(work_dir="w", seed=7).controller == ControllerConfig(seed=7)
    assert _typed().controller.seed == 4


def test_a_pre_restructure_config_json_reads_as_the_same_search():
    old = {
        "work_dir": "w",
        "num_trials": 3,
        "controller": {"batch_size": 2},
        "reward": {"kind": "hard", "target_ms": 9.0, "alpha": 0.0, "beta": -1.0},
        "data": {"resolution": 16, "seed": 4},
        "trainer": {"epochs": 2, "seed": 4},
        "latency_backend": "host",
        "latency_options": LatencyConfig(
            num_threads=2, cache_path="/tmp/c.sqlite"
        ).to_dict(),
        "latency_cache": "/tmp/c.sqlite",
        "seed": 4,
    }
    assert SearchConfig.from_dict(old) == _typed()
    assert canonical_config_dict(old) == _typed().to_dict()


def test_an_old_config_of_a_library_caller_without_latency_options():
    old = {"work_dir": "w", "latency_backend": "host", "latency_options": {}}
    assert SearchConfig.from_dict(old).latency == LatencyConfig()


def test_an_untyped_part_is_refused_naming_the_field():
    with pytest.raises(SearchConfigError) as info:
        SearchConfig(work_dir="w", data={"resolution": 16})
    assert str(info.value) == "data must be a DataConfig, got dict"


def test_unknown_fields_are_refused():
    with pytest.raises(SearchConfigError) as info:
        SearchConfig.from_dict({"work_dir": "w", "latency_mod": "measured"})
    assert str(info.value) == "unknown search config fields: latency_mod"


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"max_consecutive_failures": 0},
            "max_consecutive_failures must be >= 1 (or None: never stop), got 0",
        ),
        ({"trial_timeout_s": 0}, "trial_timeout_s must be > 0, got 0"),
        (
            {"controller_kind": "evolution"},
            "controller_kind must be one of reinforce, ppo, random, got 'evolution'",
        ),
        ({"top_k": 0}, "top_k must be >= 1, got 0"),
        (
            {"time_budget_s": 60.0},
            "time_budget_s needs evaluation 'shared' (got 'standalone')",
        ),
        (
            {
                "evaluation": "shared",
                "lut_path": "t",
                "latency_mode": "predicted",
                "time_budget_s": float("inf"),
            },
            "time_budget_s must be a finite number > 0, got inf",
        ),
        (
            {"outputs_interval_s": -1.0},
            "outputs_interval_s must be a finite number >= 0, got -1.0",
        ),
        (
            {"checkpoint_every_updates": 0},
            "checkpoint_every_updates must be an integer >= 1, got 0",
        ),
        (
            {"checkpoint_every_updates": 2.5},
            "checkpoint_every_updates must be an integer >= 1, got 2.5",
        ),
        (
            {"evaluation": "one-shot"},
            "evaluation must be one of standalone, shared, got 'one-shot'",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_range(changes, message):
    with pytest.raises(SearchConfigError) as info:
        SearchConfig(work_dir="w", **changes)
    assert str(info.value) == message
