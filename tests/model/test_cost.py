import keras
import pytest

from mnas.model.cost import compute_stats
from mnas.search_space import get_preset


@pytest.mark.parametrize(
    "name, width, params_m, params_tol, macs_lo, macs_hi",
    [
        # REFERENCE.md section 2: A1 3.9M / 312M (315.2M in the code's README).
        ("mnasnet-a1", 1.0, 3.9, 0.01, 312e6, 315.2e6),
        # A1 x1.4: 6.1M / 591.5M, +-2%.
        ("mnasnet-a1", 1.4, 6.1, 0.02, 591.5e6 * 0.98, 591.5e6 * 1.02),
        # mnasnet-small: about 2.0M / 68M.
        ("mnasnet-small", 1.0, 2.0, 0.03, 68e6 * 0.97, 68e6 * 1.03),
    ],
)
def test_published_figures(name, width, params_m, params_tol, macs_lo, macs_hi):
    stats = compute_stats(get_preset(name, width))
    assert abs(stats.params / 1e6 - params_m) <= params_m * params_tol
    assert macs_lo <= stats.macs <= macs_hi


def _trainable(model):
    return sum(int(w.numpy().size) for w in model.trainable_weights)


@pytest.mark.parametrize("alpha", [1.0, 1.4])
def test_mobilenet_v2_matches_keras_applications(alpha):
    reference = keras.applications.MobileNetV2(weights=None, alpha=alpha)
    ours = compute_stats(get_preset("mobilenet-v2", width_multiplier=alpha))
    assert ours.params == reference.count_params()


def test_efficientnet_b0_matches_keras_applications_trainable():
    from mnas.model.builder import build_model

    reference = keras.applications.EfficientNetB0(weights=None)
    ours = build_model(get_preset("efficientnet-b0"))
    assert _trainable(ours) == _trainable(reference)
    # Keras adds non-trainable Normalization statistics (mean, variance, count)
    # in front of the stem; everything else is the same network.
    assert reference.count_params() - ours.count_params() == 7


def test_per_layer_rows_add_up_and_shapes_follow_strides():
    stats = compute_stats(get_preset("mnasnet-a1"))
    names = [layer.name for layer in stats.layers]
    assert names[0] == "stem" and names[-2:] == ["head", "classifier"]
    assert len(names) == 2 + 16 + 1  # stem, 16 layers, head, classifier
    assert stats.layers[0].output_shape == (112, 112, 32)
    assert stats.layers[-2].output_shape == (7, 7, 1280)
    assert stats.params == sum(layer.params for layer in stats.layers)


def test_macs_scale_with_resolution():
    small = compute_stats(get_preset("mnasnet-a1"), (112, 112, 3))
    full = compute_stats(get_preset("mnasnet-a1"))
    assert 3.5 < (full.macs - 1.28e6) / (small.macs - 1.28e6) < 4.5
    assert small.params == full.params
