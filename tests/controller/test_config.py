"""ControllerConfig: one line naming the field and range, JSON round trip,
per-algorithm defaults filled only where unset."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from mnas.controller import ControllerConfig
from mnas.controller.config import ALGORITHM_DEFAULTS, ControllerConfigError


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(batch_size=0), "batch_size must be an integer in [1, 4096], got 0"),
        (dict(batch_size=True), "batch_size must be an integer in [1, 4096], got True"),
        (dict(hidden_size=2.5), "hidden_size must be an integer in [1, 4096], got 2.5"),
        (dict(num_layers=17), "num_layers must be an integer in [1, 16], got 17"),
        (dict(embedding_size=0), "embedding_size must be an integer in [1, 4096] or None, got 0"),
        (dict(seed=-1), "seed must be an integer in [0, 2147483647], got -1"),
        (dict(seed=2**31), "seed must be an integer in [0, 2147483647], got 2147483648"),
        (dict(share_embeddings=1), "share_embeddings must be True or False, got 1"),
        (dict(learning_rate=0.0), "learning_rate must be a finite number > 0 or None, got 0.0"),
        (dict(learning_rate=math.nan), "learning_rate must be a finite number > 0 or None, got nan"),
        (dict(grad_clip_norm=math.inf), "grad_clip_norm must be a finite number > 0 or None, got inf"),
        (dict(tanh_constant=0.0), "tanh_constant must be a finite number > 0 or None, got 0.0"),
        (dict(temperature=0), "temperature must be a finite number > 0, got 0"),
        (dict(baseline_decay=1.0), "baseline_decay must be a number in [0, 1), got 1.0"),
        (dict(entropy_weight=-1.0), "entropy_weight must be a finite number >= 0 or None, got -1.0"),
        (dict(ppo_clip=0.0), "ppo_clip must be a number in (0, 1), got 0.0"),
    ],
)  # fmt: skip
def test_bad_fields_are_refused_naming_field_and_range(changes, message):
    with pytest.raises(ControllerConfigError) as info:
        ControllerConfig(**changes)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_numpy_values_become_plain_python_so_the_dict_is_json():
    config = ControllerConfig(batch_size=np.int64(4), learning_rate=np.float32(0.5))
    assert type(config.batch_size) is int and type(config.learning_rate) is float
    assert json.loads(json.dumps(config.to_dict()))["batch_size"] == 4


def test_round_trips_through_json_with_every_field_changed():
    config = ControllerConfig(
        batch_size=4,
        seed=7,
        hidden_size=16,
        num_layers=2,
        embedding_size=8,
        share_embeddings=True,
        learning_rate=0.02,
        baseline_decay=0.5,
        entropy_weight=0.1,
        temperature=2.0,
        tanh_constant=2.5,
        ppo_clip=0.3,
        ppo_epochs=2,
        grad_clip_norm=1.0,
        init_range=0.05,
    )
    # Every field differs from its default, so a field to_dict forgot fails.
    for field in dataclasses.fields(ControllerConfig):
        assert getattr(config, field.name) != field.default, field.name
    restored = ControllerConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config


@pytest.mark.parametrize(
    "values, message",
    [
        ({"batch_sise": 4, "Seed": 1}, "unknown controller config keys: Seed, batch_sise"),
        ({"x\ny": 1}, "unknown controller config keys: 'x\\ny'"),
        ([("batch_size", 4)], "a controller config must be a mapping, got list"),
        ({"batch_size": 0}, "batch_size must be an integer in [1, 4096], got 0"),
    ],
)  # fmt: skip
def test_from_dict_refuses_unknown_keys_and_bad_values(values, message):
    with pytest.raises(ControllerConfigError) as info:
        ControllerConfig.from_dict(values)
    assert str(info.value) == message


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo"])
def test_resolve_fills_the_algorithm_defaults_only_where_unset(algorithm):
    defaults = ALGORITHM_DEFAULTS[algorithm]
    resolved = ControllerConfig(seed=3).resolve(algorithm)
    assert resolved == ControllerConfig(seed=3, **defaults)
    explicit = ControllerConfig(learning_rate=0.1, entropy_weight=0.0)
    assert explicit.resolve(algorithm) == explicit
    half = ControllerConfig(entropy_weight=0.0).resolve(algorithm)
    assert (half.learning_rate, half.entropy_weight) == (defaults["learning_rate"], 0.0)


@pytest.mark.parametrize("algorithm", ["random", None, "PPO"])
def test_resolve_refuses_an_algorithm_without_defaults(algorithm):
    with pytest.raises(ControllerConfigError) as info:
        ControllerConfig().resolve(algorithm)
    assert str(info.value) == (
        f"algorithm must be one of ('reinforce', 'ppo'), got {algorithm!r}"
    )
