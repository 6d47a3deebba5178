"""Proxy trainer: real training on the embedded digits, divergence, bad input."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from mnas.model.builder import build_model
from mnas.model.plan import plan_layers
from mnas.search_space import get_preset, parse_arch
from mnas.train.data import ProxyData, load_proxy_data
from mnas.train.data_config import DataConfig
from mnas.train.proxy import (
    TrainingDivergedError,
    prepare_model,
    recalibrate_batch_norm,
    train_and_evaluate,
)
from mnas.train.proxy_config import TrainerConfig

# Five blocks of the MnasNet kind (dsconv, mbconv with and without SE, identity
# skips) and a narrow head: a real candidate's structure that traces quickly.
SMALL_MNAS = (
    "r1_k3_s11_e1_i32_o16 r2_k3_s22_e3_i16_o24 r2_k5_s22_e3_i24_o40_se0.25 "
    "r2_k3_s22_e6_i40_o80 r1_k3_s22_e6_i80_o96"
)

RES = 16


@pytest.fixture(scope="module")
def digits() -> ProxyData:
    return load_proxy_data(DataConfig(resolution=RES, batch_size=32))


@pytest.fixture(scope="module")
def small_digits() -> ProxyData:
    return load_proxy_data(
        DataConfig(resolution=RES, batch_size=32, max_train_examples=128)
    )


def tiny_cnn(
    num_classes: int = 10,
    softmax: bool = True,
    extra: keras.layers.Layer | None = None,
    seed: int = 0,
) -> keras.Model:
    """Conv-BN-ReLU x2, pooling, classifier: small, but shaped like the real ones."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((RES, RES, 3))
    x = inputs
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(
            x
        )
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    if extra is not None:
        x = extra(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax" if softmax else None
    )(x)
    return keras.Model(inputs, outputs)


class _NanAtInference(keras.layers.Layer):
    """Finite while training, NaN in inference mode: a broken candidate."""

    def call(self, x, training=None):
        return x if training else x * float("nan")


class _UnusedNanWeight(keras.layers.Layer):
    def build(self, input_shape):
        self.junk = self.add_weight(
            shape=(2,), initializer="zeros", trainable=False, name="junk"
        )
        self.junk.assign([np.nan, 0.0])

    def call(self, x):
        return x


def test_tiny_cnn_learns_digits_well_above_chance(digits):
    config = TrainerConfig(epochs=3)
    result = train_and_evaluate(tiny_cnn(), digits, config)

    assert result.accuracy > 0.5, result  # Chance is 0.1.
    assert result.epochs == 3 and len(result.history) == 3
    assert result.steps == 3 * digits.steps_per_epoch
    assert result.examples_seen == result.steps * 32
    # Scored once, after the last epoch.
    assert [h.val_accuracy is None for h in result.history] == [True, True, False]
    assert result.accuracy == result.history[-1].val_accuracy
    assert result.loss == result.history[-1].val_loss
    assert result.history[-1].loss < result.history[0].loss
    assert result.wall_time_s >= result.history[-1].seconds > 0
    json.dumps(result.to_dict())  # Ready for the trial journal.


def test_a_mnasnet_like_candidate_learns_digits_with_the_default_recipe():
    """The one check that the proxy learns: a real candidate (the builder's
    blocks, batch norm, SE, skips) from scratch, default recipe, 512 digits.
    It reached 0.933 with the default recipe (48 steps, the first 8 a
    warm-up; docs/proxy.md); chance is 0.1, and a broken
    optimizer, label pipeline or evaluation lands near it."""
    data = load_proxy_data(DataConfig(max_train_examples=512))
    keras.utils.set_random_seed(0)
    model = build_model(
        parse_arch(SMALL_MNAS, head_filters=256, stem_filters=16),
        data.image_shape,
        data.num_classes,
    )
    result = train_and_evaluate(model, data, TrainerConfig())
    assert result.accuracy >= 0.9, result


@pytest.mark.slow
def test_mnasnet_small_reaches_the_proxy_bar_on_digits():
    """The issue's bar for the presets: >= 0.95 held-out within the default
    proxy budget (0.975 and 0.981 in two runs, docs/proxy.md; 0.557 with
    the old recipe)."""
    data = load_proxy_data(DataConfig())
    keras.utils.set_random_seed(0)
    model = build_model(get_preset("mnasnet-small"), data.image_shape, 10)
    result = train_and_evaluate(model, data, TrainerConfig())
    assert result.accuracy >= 0.95, result


def test_evaluating_each_epoch_scores_every_epoch(small_digits):
    config = TrainerConfig(epochs=2, steps_per_epoch=2, evaluate_each_epoch=True)
    result = train_and_evaluate(tiny_cnn(), small_digits, config)
    assert all(h.val_accuracy is not None for h in result.history)
    assert all(h.seconds > 0 for h in result.history)
    assert result.accuracy == result.history[-1].val_accuracy


def test_training_is_seeded_and_capped(small_digits):
    config = TrainerConfig(
        epochs=1, optimizer="sgd", learning_rate=0.05, steps_per_epoch=3
    )
    first = train_and_evaluate(tiny_cnn(softmax=False), small_digits, config)
    second = train_and_evaluate(tiny_cnn(softmax=False), small_digits, config)
    assert (first.steps, first.examples_seen) == (3, 3 * 32)
    assert first.accuracy == second.accuracy
    assert first.history[0].loss == pytest.approx(second.history[0].loss, rel=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])  # RMSProp: everywhere else.
def test_other_optimizers_and_warmup_train(small_digits, optimizer):
    result = train_and_evaluate(
        tiny_cnn(),
        small_digits,
        TrainerConfig(
            epochs=2,
            optimizer=optimizer,
            schedule="constant",
            warmup_epochs=1,
            steps_per_epoch=2,
        ),
    )
    assert 0.0 <= result.accuracy <= 1.0 and np.isfinite(result.loss)


def test_huge_learning_rate_is_reported_as_diverged(small_digits):
    config = TrainerConfig(
        epochs=2, optimizer="sgd", learning_rate=1e12, schedule="constant"
    )
    with pytest.raises(TrainingDivergedError) as err:
        train_and_evaluate(tiny_cnn(softmax=False), small_digits, config)
    assert err.value.epoch == 1 and err.value.step >= 1
    assert err.value.reason == str(err.value)
    assert err.value.reason.startswith("training loss became ")
    assert err.value.reason.endswith(f" at epoch 1, step {err.value.step}")


def test_nan_at_inference_is_reported_as_diverged(small_digits):
    model = tiny_cnn(extra=_NanAtInference())
    with pytest.raises(TrainingDivergedError) as err:
        train_and_evaluate(model, small_digits, TrainerConfig(epochs=1))
    assert str(err.value) == "validation loss became nan after epoch 1"
    assert err.value.epoch == 1


def test_nan_weights_are_reported_as_diverged(small_digits):
    model = tiny_cnn(extra=_UnusedNanWeight(name="broken"))
    with pytest.raises(TrainingDivergedError) as err:
        train_and_evaluate(model, small_digits, TrainerConfig(epochs=1))
    assert str(err.value) == (
        "weight 'broken/junk' holds NaN or infinite values after training"
    )


def test_recalibration_sets_exact_statistics_over_uneven_chunks():
    inputs = keras.Input((4, 4, 3))
    bn = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(inputs, bn(inputs))
    rng = np.random.default_rng(0)
    images = rng.normal(3.0, 2.0, size=(12, 4, 4, 3)).astype(np.float32)
    chunks = (images[:8], images[8:])

    recalibrate_batch_norm(model, images, chunk_size=8)

    weights = np.array([8.0, 4.0]) / 12.0
    mean = sum(w * c.mean(axis=(0, 1, 2)) for w, c in zip(weights, chunks))
    var = sum(w * c.var(axis=(0, 1, 2)) for w, c in zip(weights, chunks))
    np.testing.assert_allclose(bn.moving_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance, var, rtol=1e-4)
    assert bn.momentum == 0.99


def test_recalibration_rescues_short_training(digits):
    """Momentum-0.99 statistics after two short epochs score near chance."""
    as_built = {"epochs": 2, "batch_norm_momentum": None}
    stale = train_and_evaluate(
        tiny_cnn(), digits, TrainerConfig(**as_built, bn_recalibration_images=0)
    )
    fresh = train_and_evaluate(
        tiny_cnn(), digits, TrainerConfig(**as_built, bn_recalibration_images=512)
    )
    assert fresh.accuracy > stale.accuracy + 0.2, (stale.accuracy, fresh.accuracy)


def _batch_norms(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def test_prepare_zeroes_the_classifier_so_predictions_start_uniform():
    model = build_model(get_preset("mnasnet-small"), (32, 32, 3), 10)
    prepare_model(model, TrainerConfig())
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3))
    np.testing.assert_allclose(model(images, training=True), 0.1, atol=1e-6)


def test_prepare_zeroes_exactly_the_last_batch_norm_of_each_residual_branch():
    # mbconv with identity skips, a conv block with pooling skips (its first
    # layer projects the shortcut through its own batch norm), dsconv without.
    spec = parse_arch(
        "r1_k3_s11_e1_i32_o16_dsconv_noskip r2_k3_s22_e3_i16_o24 "
        "r2_k3_s22_e1_i24_o40_conv_poolskip r2_k5_s22_e6_i40_o80_se0.25"
    )
    model = build_model(spec, (32, 32, 3), 10)
    prepare_model(model, TrainerConfig())
    zeroed = {bn.name for bn in _batch_norms(model) if not np.any(bn.gamma.numpy())}
    expected = {
        f"{layer.name}_bn"
        if layer.block.conv_op == "conv"
        else f"{layer.name}_project_bn"
        for layer in plan_layers(spec, (32, 32))
        if layer.has_identity_skip or layer.has_pool_skip
    }
    assert zeroed == expected
    assert any(name.endswith("_bn") and "project" not in name for name in expected)
    # Each such layer now passes its shortcut through unchanged.
    layer = next(p for p in plan_layers(spec, (32, 32)) if p.has_identity_skip)
    probe = keras.Model(
        model.input,
        [
            model.get_layer(f"{layer.name}_add").input[1],
            model.get_layer(f"{layer.name}_add").output,
        ],
    )
    shortcut, joined = probe(np.ones((2, 32, 32, 3)), training=True)
    np.testing.assert_allclose(joined, shortcut, atol=1e-6)


def test_prepare_overrides_momentum_and_dropout_only_when_asked():
    spec = get_preset("efficientnet-b0")  # Head dropout and drop connect.
    model = build_model(spec, (32, 32, 3), 10)
    dropouts = [x for x in model.layers if isinstance(x, keras.layers.Dropout)]
    assert {d.rate > 0 for d in dropouts} == {True}
    prepare_model(
        model,
        TrainerConfig(
            batch_norm_momentum=None,
            dropout_rate=None,
            reset_classifier=False,
            zero_init_residual=False,
        ),
    )
    assert {bn.momentum for bn in _batch_norms(model)} == {0.99}
    assert {d.rate > 0 for d in dropouts} == {True}
    prepare_model(model, TrainerConfig(batch_norm_momentum=0.7, dropout_rate=0.0))
    assert {bn.momentum for bn in _batch_norms(model)} == {0.7}
    assert {d.rate for d in dropouts} == {0.0}


def test_model_that_does_not_fit_the_data(small_digits):
    with pytest.raises(ValueError) as err:
        train_and_evaluate(tiny_cnn(num_classes=3), small_digits, TrainerConfig())
    assert str(err.value) == "model output shape (None, 3) does not fit 10 classes"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer in [1, 10000], got 0"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0, got 0.0"),
        (
            {"optimizer": "lamb"},
            "optimizer must be one of ('rmsprop', 'sgd', 'adam'), got 'lamb'",
        ),
        (
            {"schedule": "step"},
            "schedule must be one of ('constant', 'cosine'), got 'step'",
        ),
        (
            {"steps_per_epoch": 0},
            "steps_per_epoch must be an integer in [1, 2147483648] or None, got 0",
        ),
        (
            {"epochs": 2, "warmup_epochs": 10001},
            "warmup_epochs must be a number in [0, 10000], got 10001",
        ),
        (
            {"bn_recalibration_images": -1},
            "bn_recalibration_images must be an integer in [0, 2147483648], got -1",
        ),
        ({"epsilon": -1e-3}, "epsilon must be a finite number > 0 or None, got -0.001"),
        ({"momentum": "0.9"}, "momentum must be a number in [0, 1), got '0.9'"),
        (
            {"weight_decay": math.inf},
            "weight_decay must be a finite number >= 0, got inf",
        ),
        ({"seed": 2**32}, "seed must be an integer in [0, 4294967295], got 4294967296"),
        (
            {"batch_norm_momentum": 1.0},
            "batch_norm_momentum must be a number in [0, 1) or None, got 1.0",
        ),
        (
            {"dropout_rate": -0.1},
            "dropout_rate must be a number in [0, 1) or None, got -0.1",
        ),
        (
            {"reset_classifier": 1},
            "reset_classifier must be True or False, got 1",
        ),
        (
            {"evaluate_each_epoch": "yes"},
            "evaluate_each_epoch must be True or False, got 'yes'",
        ),
    ],
)
def test_bad_trainer_config(kwargs, message):
    with pytest.raises(ValueError) as err:
        TrainerConfig(**kwargs)
    assert str(err.value) == message
