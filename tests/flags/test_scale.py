"""mnas-scale's flags: phis, the three coefficients, the grid-search config."""

import pytest

from mnas.flags.scale import (
    RENAMED,
    coefficients_from_flags,
    define_scale_flags,
    phis_from_flags,
    scaling_search_config_from_flags,
)
from mnas.search_space.scaling import ScalingCoefficients


def test_phis_and_coefficients(parse):
    flag_values = parse(
        define_scale_flags,
        "--phi=0,1.5,2",
        "--depth_coefficient=1.2",
        "--width_coefficient=1.1",
        "--resolution_coefficient=1.15",
    )
    assert phis_from_flags(flag_values) == (0, 1.5, 2)
    assert coefficients_from_flags(flag_values) == ScalingCoefficients(1.2, 1.1, 1.15)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--phi=-1"], "--phi values must be in [0, 10], got '-1'"),
        (["--phi=1e6"], "--phi values must be in [0, 10], got '1e6'"),
        (["--phi=x"], "--phi values must be numbers, got 'x'"),
        (["--phi="], "--phi needs at least one value"),
    ],
)
def test_bad_phis(parse, args, message):
    with pytest.raises(ValueError) as info:
        phis_from_flags(parse(define_scale_flags, *args))
    assert str(info.value) == message


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--depth_coefficient=2", "--width_coefficient=1.2",
             "--resolution_coefficient=1.2"],
            "alpha * beta^2 * gamma^2 = 4.1472 (alpha=2, beta=1.2, gamma=1.2) is "
            "off from 2 by more than the tolerance 0.1",
        ),
        (["--resolution_coefficient=inf"],
         "--resolution_coefficient must be a finite number, got inf"),
        (["--depth_coefficient=0.5"], "--depth_coefficient must be >= 1.0, got 0.5"),
        (["--width_coefficient=5"], "--width_coefficient must be <= 4.0, got 5.0"),
        (["--tolerance=nan"], "--tolerance must be a finite number, got nan"),
    ],
)  # fmt: skip
def test_bad_coefficients(parse, args, message):
    with pytest.raises(ValueError) as info:
        coefficients_from_flags(parse(define_scale_flags, *args))
    assert str(info.value) == message


def test_grid_search_config_scores_by_reward_only_with_a_target(parse):
    by_accuracy = scaling_search_config_from_flags(
        parse(define_scale_flags, "--triples=1.2:1.1:1.15", "--proxy_epochs=2")
    )
    assert by_accuracy.triples == ((1.2, 1.1, 1.15),)
    assert by_accuracy.reward is None
    assert (by_accuracy.trainer.epochs, by_accuracy.data.batch_size) == (2, 64)
    by_reward = scaling_search_config_from_flags(
        parse(define_scale_flags, "--target_ms=5", "--grid_step=0.1", "--grid_max=1.4")
    )
    assert by_reward.reward.target_ms == 5.0
    assert by_reward.triples
    grid = (1.0, 1.1, 1.2, 1.3, 1.4)
    for triple in by_reward.triples:
        assert all(min(abs(v - g) for g in grid) < 1e-9 for v in triple)
        depth, width, resolution = triple
        assert abs(depth * width**2 * resolution**2 - 2) <= 0.1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--triples=1:1:2", "--grid_step=0.1"], "give --triples or --grid_step, not both"),
        (["--grid_step=0"], "--grid_step must be in (0, --grid_max - 1] and --grid_max "
         "in [1, 4], got --grid_step=0 --grid_max=1.6"),
        (["--grid_step=1e-300"], "--grid_step must be >= (--grid_max - 1) / 99 (at "
         "most 100 grid values), got --grid_step=1e-300 --grid_max=1.6"),
        (["--proxy_epochs=0"], "--proxy_epochs must be >= 1, got 0"),
        (["--target_ms=-3"], "target latency must be > 0 ms, got -3.0"),
    ],
)  # fmt: skip
def test_bad_grid_search_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        scaling_search_config_from_flags(parse(define_scale_flags, *args))
    assert str(info.value) == message


def test_retired_names_point_to_the_new_ones(parse):
    flag_values = parse(define_scale_flags)
    assert set(RENAMED).isdisjoint(flag_values)
    assert set(RENAMED.values()) <= set(flag_values)
