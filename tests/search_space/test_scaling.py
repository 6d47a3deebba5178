import math

import pytest

from mnas.model.cost import compute_stats
from mnas.search_space import ArchSpec, get_preset
from mnas.search_space.scaling import (
    EFFICIENTNET_TABLE,
    ScalingCoefficients,
    ScalingError,
    scale,
    scaled_dropout,
    scaled_resolution,
)

# keras.applications.EfficientNet* adds a Normalization layer (mean 3,
# variance 3, count 1: 7 non-trainable values) that the project's builder,
# like the official TPU code, leaves to the input pipeline.
KERAS_NORMALIZATION_PARAMS = 7


@pytest.mark.parametrize(
    "index",
    # B4-B7 take 5-7 s each to build in Keras; B0-B3 check the same scaling
    # rules (width, depth, resolution) in the fast suite.
    [i if i < 4 else pytest.param(i, marks=pytest.mark.slow) for i in range(8)],
)
def test_efficientnet_params_match_keras_applications(index):
    import keras

    spec = get_preset(f"efficientnet-b{index}")
    width, depth, resolution, dropout = EFFICIENTNET_TABLE[spec.name]
    assert (spec.width_multiplier, spec.depth_multiplier) == (width, depth)
    assert (spec.resolution, spec.dropout_rate) == (resolution, dropout)
    ours = compute_stats(spec, num_classes=1000).params
    model = getattr(keras.applications, f"EfficientNetB{index}")(
        weights=None, include_top=True
    )
    theirs = model.count_params() - KERAS_NORMALIZATION_PARAMS
    assert abs(ours - theirs) / theirs < 0.005
    assert ours == theirs
    keras.backend.clear_session()


def test_phi_zero_is_identity():
    base = get_preset("mnasnet-a1")
    assert scale(base, 0) is base
    assert scale(base, 0.0) == base


def test_family_grows_monotonically():
    base = get_preset("mnasnet-a1")
    family = [scale(base, phi) for phi in range(8)]
    stats = [compute_stats(spec) for spec in family]
    for smaller, larger, small_stats, large_stats in zip(
        family, family[1:], stats, stats[1:]
    ):
        assert larger.resolution > smaller.resolution
        assert larger.resolution % 8 == 0
        assert larger.width_multiplier > smaller.width_multiplier
        assert larger.depth_multiplier > smaller.depth_multiplier
        assert larger.dropout_rate >= smaller.dropout_rate
        assert large_stats.params > small_stats.params
        assert large_stats.macs > small_stats.macs
        assert sum(b.num_repeat for b in larger.scaled_blocks()) >= sum(
            b.num_repeat for b in smaller.scaled_blocks()
        )
    assert family[1].name == "mnasnet-a1-phi1"
    assert family[1].resolution == 256  # 224 * 1.15 = 257.6
    assert family[1].depth_multiplier == pytest.approx(1.2)
    assert family[1].width_multiplier == pytest.approx(1.1)
    assert family[7].dropout_rate == 0.5
    assert family[0].blocks == family[7].blocks  # published form kept


def test_scaling_composes_with_recorded_multipliers():
    base = get_preset("mnasnet-a1", width_multiplier=0.5)
    assert scale(base, 1).width_multiplier == pytest.approx(0.55)


def test_one_phi_step_roughly_doubles_macs():
    base = get_preset("efficientnet-b0")
    ratio = compute_stats(scale(base, 1)).macs / compute_stats(base).macs
    assert 1.7 < ratio < 2.3


def test_dropout_schedule():
    assert scaled_dropout(0.2, 0) == 0.2
    assert scaled_dropout(0.2, 3.5) == pytest.approx(0.35)
    assert scaled_dropout(0.2, 7) == 0.5
    assert scaled_dropout(0.2, 10) == 0.5
    assert scaled_dropout(0.0, 7) == 0.5
    assert scaled_dropout(0.6, 3) == 0.6


def test_scaled_resolution_rounds_to_multiple():
    assert scaled_resolution(224, 1.15) == 256
    assert scaled_resolution(224, 1.15**2) == 296
    assert scaled_resolution(32, 1.15, multiple=4) == 36
    assert scaled_resolution(8, 0.1) == 8


def test_negative_phi():
    with pytest.raises(ScalingError) as info:
        scale(get_preset("mnasnet-a1"), -1)
    assert str(info.value) == "phi must be a number in [0, 10], got -1"
    assert isinstance(info.value, ValueError)


def test_non_finite_phi_and_coefficients():
    base = get_preset("mnasnet-a1")
    with pytest.raises(ScalingError) as info:
        scale(base, math.inf)
    assert str(info.value) == "phi must be a number in [0, 10], got inf"
    with pytest.raises(ScalingError) as info:
        scale(base, 1, alpha=math.nan)
    assert str(info.value) == "alpha must be a number in [1, 4], got nan"
    with pytest.raises(ScalingError) as info:
        ScalingCoefficients(gamma=math.inf)
    assert str(info.value) == "gamma must be a number in [1, 4], got inf"
    with pytest.raises(ScalingError) as info:
        ScalingCoefficients(beta=0.9)
    assert str(info.value) == "beta must be a number in [1, 4], got 0.9"


def test_constraint_violation_shows_product():
    with pytest.raises(ScalingError) as info:
        scale(get_preset("mnasnet-a1"), 1, alpha=2.0, beta=1.2, gamma=1.2)
    assert str(info.value) == (
        "alpha * beta^2 * gamma^2 = 4.1472 (alpha=2, beta=1.2, gamma=1.2) "
        "is off from 2 by more than the tolerance 0.1"
    )
    # A wider tolerance admits it.
    scale(get_preset("mnasnet-a1"), 1, alpha=2.0, beta=1.2, gamma=1.2, tolerance=3)


def test_published_coefficients_pass_default_tolerance():
    coefficients = ScalingCoefficients()
    assert coefficients.flops_factor == pytest.approx(1.920, abs=1e-3)
    coefficients.check()
    with pytest.raises(ScalingError, match=r"= 1\.9203 .* tolerance 0\.05$"):
        coefficients.check(0.05)


def test_json_round_trip_of_scaled_spec():
    spec = scale(get_preset("mnasnet-a1"), 2)
    assert ArchSpec.from_json(spec.to_json()) == spec
