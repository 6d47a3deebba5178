import json
import pathlib

import pytest

from mnas.scaling.grid import (
    DEFAULT_TRIPLES,
    ScalingSearchConfig,
    grid_triples,
    parse_triples,
    run_scaling_search,
)
from mnas.search.reward import RewardConfig
from mnas.search_space import get_preset
from mnas.search_space.scaling import ScalingCoefficients, ScalingError
from mnas.train.data import DataConfig
from mnas.train.proxy import TrainerConfig


def test_default_triples_satisfy_the_constraint():
    assert len(DEFAULT_TRIPLES) == 5
    assert (1.2, 1.1, 1.15) in DEFAULT_TRIPLES
    for triple in DEFAULT_TRIPLES:
        ScalingCoefficients(*triple).check(0.1)


def test_grid_triples_respect_tolerance():
    triples = grid_triples(step=0.05, high=1.6, tolerance=0.1)
    assert (1.2, 1.1, 1.15) in triples
    assert all(abs(a * b * b * g * g - 2) <= 0.1 for a, b, g in triples)
    assert len(grid_triples(step=0.05, high=1.6, tolerance=0.02)) < len(triples)
    with pytest.raises(ScalingError) as info:
        grid_triples(step=0)
    assert str(info.value) == "grid step must be a finite number > 0, got 0"


def test_parse_triples():
    assert parse_triples(["1.2:1.1:1.15", "1:1.05:1.35"]) == (
        (1.2, 1.1, 1.15),
        (1.0, 1.05, 1.35),
    )
    with pytest.raises(ScalingError) as info:
        parse_triples(["1.2:x:1"])
    assert str(info.value) == (
        "a triple is written alpha:beta:gamma (e.g. 1.2:1.1:1.15), got '1.2:x:1'"
    )


def test_config_rejects_triples_off_the_constraint():
    with pytest.raises(ScalingError, match=r"= 1\.0000 .*tolerance 0\.1$"):
        ScalingSearchConfig(triples=((1.0, 1.0, 1.0),))
    with pytest.raises(ScalingError) as info:
        ScalingSearchConfig(triples=())
    assert str(info.value) == "the grid holds no (alpha, beta, gamma) triple"


@pytest.mark.slow
def test_tiny_grid_search_ranks_by_accuracy(tmp_path):
    config = ScalingSearchConfig(
        triples=((1.2, 1.1, 1.15), (1.0, 1.05, 1.35)),
        data=DataConfig(resolution=16, max_train_examples=128),
        trainer=TrainerConfig(epochs=1),
    )
    lines = []
    result = run_scaling_search(
        get_preset("mnasnet-small"), config, progress=lines.append
    )
    assert len(lines) == 2
    scores = [r.score for r in result.results]
    assert scores == sorted(scores, reverse=True)
    assert result.chosen == result.results[0]
    assert all(r.latency_ms is None for r in result.results)
    assert "alpha" in result.table()
    data = json.loads(pathlib.Path(result.write(str(tmp_path))).read_text())
    assert data["score"] == "accuracy"
    assert data["chosen"]["alpha"] == result.chosen.alpha


def test_reward_without_backend_is_refused():
    config = ScalingSearchConfig(reward=RewardConfig(target_ms=5))
    with pytest.raises(ValueError, match="needs a latency backend"):
        run_scaling_search(get_preset("mnasnet-small"), config)
