"""SearchConfig: typed parts, config.json round trip, the pre-restructure form."""

import dataclasses
import json

import pytest

from mnas.controller import ControllerConfig
from mnas.latency.config import LatencyConfig
from mnas.search.config import SearchConfig, SearchConfigError, canonical_config_dict
from mnas.search.reward import RewardConfig
from mnas.train.data import DataConfig
from mnas.train.proxy import TrainerConfig


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
    # What the search trained with then, where its config was silent.
    then = dataclasses.replace(
        _typed(),
        data=DataConfig(resolution=16, seed=4, batch_size=16, augment=True),
        trainer=TrainerConfig(
            epochs=2,
            seed=4,
            learning_rate=0.008,
            optimizer="rmsprop",
            epsilon=1e-3,
            weight_decay=1e-5,
            label_smoothing=0.1,
            warmup_epochs=0.0,
            bn_recalibration_images=512,
            reset_classifier=False,
            zero_init_residual=False,
            batch_norm_momentum=None,
            dropout_rate=None,
        ),
    )
    assert SearchConfig.from_dict(old) == then
    assert canonical_config_dict(old) == then.to_dict()


def test_an_old_config_keeps_the_recipe_it_set_over_the_defaults_of_then():
    old = {
        "work_dir": "w",
        "latency_backend": "host",
        "data": {"batch_size": 64},
        "trainer": {"optimizer": "adam", "epochs": 6},
    }
    config = SearchConfig.from_dict(old)
    assert (config.data.batch_size, config.data.augment) == (64, True)
    assert (config.trainer.optimizer, config.trainer.epochs) == ("adam", 6)
    assert config.trainer.learning_rate == 0.008


def test_an_old_config_of_a_library_caller_without_latency_options():
    old = {"work_dir": "w", "latency_backend": "host", "latency_options": {}}
    config = SearchConfig.from_dict(old)
    assert config.latency == LatencyConfig()
    assert config.trainer.optimizer == "rmsprop" and config.data.batch_size == 16


def test_a_config_of_today_is_not_given_the_old_defaults():
    assert SearchConfig.from_dict(SearchConfig("w").to_dict()) == SearchConfig("w")


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
            {"evaluation": "one-shot"},
            "evaluation must be one of standalone, shared, got 'one-shot'",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_range(changes, message):
    with pytest.raises(SearchConfigError) as info:
        SearchConfig(work_dir="w", **changes)
    assert str(info.value) == message
