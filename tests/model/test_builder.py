import keras
import numpy as np
import pytest

from mnas.model.builder import build_model
from mnas.model.cost import compute_stats
from mnas.search_space import MNASNET_SPACE, get_preset, preset_names


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


# The largest EfficientNets take 15-30 s each to build; b0-b3 cover the same
# code paths in the fast suite.
_LARGE = {f"efficientnet-b{i}" for i in range(4, 8)}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in _LARGE else name
        for name in preset_names()
    ],
)
def test_presets_count_params_equal_analytic_stats(name):
    spec = get_preset(name)
    model = build_model(spec, (224, 224, 3), 1000)
    assert model.count_params() == compute_stats(spec).params


def _check_samples(seeds, input_shape, num_classes=10):
    for seed in seeds:
        spec = MNASNET_SPACE.decode(MNASNET_SPACE.sample(seed))
        model = build_model(spec, input_shape, num_classes)
        assert (
            model.count_params() == compute_stats(spec, input_shape, num_classes).params
        )
        assert model.output_shape == (None, num_classes)
        keras.backend.clear_session()


def test_random_samples_build():
    # Parameters do not depend on the resolution (fully convolutional up to
    # global pooling); the slow test below builds 200 at both resolutions.
    _check_samples(range(8), (32, 32, 3))


@pytest.mark.slow
@pytest.mark.parametrize("resolution", [32, 224])
def test_200_random_samples_build(resolution):
    _check_samples(range(200), (resolution, resolution, 3))


def test_layer_names_are_deterministic():
    spec = get_preset("mnasnet-a1")
    first = [layer.name for layer in build_model(spec).layers]
    keras.backend.clear_session()
    second = [layer.name for layer in build_model(spec).layers]
    assert first == second
    assert "stem_conv" in first and "head_conv" in first and "classifier" in first
    assert "block2_layer0_se_reduce" in first
    assert "block1_layer1_add" in first  # identity residual
    assert "block0_layer0_add" not in first  # noskip


def test_forward_pass_and_pool_skip():
    actions = [2, 0, 0, 2, 1, 1] + [0, 1, 1, 2, 1, 1] + [1, 0, 0, 2, 1, 1] * 5
    spec = MNASNET_SPACE.decode(actions)
    model = build_model(spec, (32, 32, 3), 10)
    names = {layer.name for layer in model.layers}
    assert "block1_layer0_skip_pool" in names and "block1_layer0_skip_conv" in names
    assert "block1_layer1_add" in names
    out = model(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32"))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)


def test_logits_option_and_bad_input():
    spec = get_preset("mnasnet-small")
    model = build_model(spec, (32, 32, 3), 5, classifier_activation=None)
    assert model.get_layer("classifier").activation.__name__ == "linear"
    with pytest.raises(ValueError, match="input_shape must be"):
        build_model(spec, (32, 32), 5)
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        build_model(spec, (32, 32, 3), 0)
