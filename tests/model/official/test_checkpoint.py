"""Importing official MnasNet checkpoints: exact mapping, EMA, strict errors."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mnas.model.builder import build_model
from mnas.model.official.checkpoint import (
    MissingMovingAverageError,
    MissingTensorError,
    ShapeMismatchError,
    UnexpectedTensorError,
    detect_model_name,
    is_official_checkpoint,
    load_official_weights,
    official_tensors,
    write_checkpoint,
)
from mnas.model.official.names import name_entries
from mnas.model.weights import load_any
from mnas.search_space.presets import get_preset


def _spec(name: str):
    return get_preset(name).replace(resolution=32)  # Weight shapes ignore resolution.


def _random_tensors(
    spec, seed: int = 0, layout: str = "keras"
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    template = official_tensors(spec, build_model(spec), layout=layout)
    return {
        name: rng.standard_normal(value.shape).astype(np.float32)
        for name, value in template.items()
    }


def _with_training_state(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Adds what a training checkpoint also holds: step and RMSProp slots."""
    out = dict(tensors)
    out["global_step"] = np.array(1000, np.int64)
    for name, value in list(tensors.items())[:3]:
        out[name + "/RMSProp"] = np.ones_like(value)
        out[name + "/RMSProp_1"] = np.zeros_like(value)
    return out


@pytest.mark.parametrize("preset", ["mnasnet-a1", "mnasnet-b1"])
def test_every_keras_weight_equals_its_official_tensor(tmp_path, preset) -> None:
    spec = _spec(preset)
    tensors = _random_tensors(spec)
    prefix = write_checkpoint(
        str(tmp_path / "model.ckpt-100"), _with_training_state(tensors)
    )
    listed = {name for name, _ in tf.train.list_variables(prefix)}
    official = {e.official for e in name_entries(spec, preset, "keras")}
    assert official <= listed
    assert listed - official == set(_with_training_state(tensors)) - set(tensors)
    assert is_official_checkpoint(str(tmp_path))
    assert detect_model_name(prefix) == preset

    model = build_model(spec)
    report = load_official_weights(model, spec, str(tmp_path))

    assert report.layout == "keras" and not report.ema
    assert len(report.assigned) == len(model.weights) == len(tensors)
    for weight in model.weights:
        source = report.assigned[weight.path]
        np.testing.assert_array_equal(weight.numpy(), tensors[source], err_msg=source)
    assert report.ignored["global_step"] == "optimizer slot or counter"


def test_moving_average_shadows_win(tmp_path) -> None:
    spec = _spec("mnasnet-b1")
    raw = _random_tensors(spec, seed=1)
    ema = _random_tensors(spec, seed=2)
    both = dict(raw)
    both.update({name + "/ExponentialMovingAverage": v for name, v in ema.items()})
    prefix = write_checkpoint(str(tmp_path / "ckpt"), both)

    model = build_model(spec)
    report = load_official_weights(model, spec, prefix)
    assert report.ema
    for entry in name_entries(spec, "mnasnet-b1", "keras"):
        weight = next(w for w in model.weights if w.path == entry.keras)
        np.testing.assert_array_equal(weight.numpy(), ema[entry.official])
        assert report.ignored[entry.official].startswith(
            "shadowed by its moving average"
        )

    load_official_weights(model, spec, prefix, prefer_ema=False)
    first = name_entries(spec, "mnasnet-b1", "keras")[0]
    weight = next(w for w in model.weights if w.path == first.keras)
    np.testing.assert_array_equal(weight.numpy(), raw[first.official])


B1_STEM_VARIANCE = "mnasnet-b1/mnas_stem/batch_normalization/moving_variance"


def _b1_lacking_one_shadow(tmp_path):
    """B1 with raw weights and shadows, but no shadow for the stem's variance."""
    spec = _spec("mnasnet-b1")
    raw, ema = _random_tensors(spec, seed=1), _random_tensors(spec, seed=2)
    tensors = dict(raw)
    tensors.update(
        {
            n + "/ExponentialMovingAverage": v
            for n, v in ema.items()
            if n != B1_STEM_VARIANCE
        }
    )
    return spec, raw, ema, write_checkpoint(str(tmp_path / "ckpt"), tensors)


def test_a_missing_moving_average_is_refused_and_named(tmp_path) -> None:
    spec, _, _, prefix = _b1_lacking_one_shadow(tmp_path)
    model = build_model(spec)
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(MissingMovingAverageError) as error:
        load_official_weights(model, spec, prefix)
    assert str(error.value) == (
        f"checkpoint '{prefix}' holds moving averages but lacks 1 of them: "
        f"'{B1_STEM_VARIANCE}/ExponentialMovingAverage' (for Keras weight "
        "'stem_bn/moving_variance'); the official evaluation fails on a missing "
        "moving average (allow_missing_ema loads the raw weights there)"
    )
    for weight, value in zip(model.weights, before, strict=True):  # Untouched.
        np.testing.assert_array_equal(weight.numpy(), value)


def test_a_mixed_load_when_asked_takes_the_raw_weight_and_says_so(tmp_path) -> None:
    spec, raw, ema, prefix = _b1_lacking_one_shadow(tmp_path)
    model = build_model(spec)
    report = load_official_weights(model, spec, prefix, allow_missing_ema=True)
    assert report.ema and report.missing_ema == (B1_STEM_VARIANCE,)
    assert report.assigned["stem_bn/moving_variance"] == B1_STEM_VARIANCE
    np.testing.assert_array_equal(
        model.get_layer("stem_bn").moving_variance.numpy(), raw[B1_STEM_VARIANCE]
    )
    gamma = "mnasnet-b1/mnas_stem/batch_normalization/gamma"
    np.testing.assert_array_equal(model.get_layer("stem_bn").gamma.numpy(), ema[gamma])

    loaded = load_any(prefix, spec, allow_missing_ema=True)
    assert loaded.description == (
        f"official checkpoint '{prefix}' (mnasnet-b1, keras names, moving "
        "averages, 1 raw where the moving average is missing)"
    )
    with pytest.raises(MissingMovingAverageError):
        load_any(prefix, spec)


def test_legacy_layout_is_detected(tmp_path) -> None:
    spec = _spec("mnasnet-a1")
    tensors = _random_tensors(spec, layout="legacy")
    assert "mnasnet-a1/mnas_head/dense/kernel" in tensors
    prefix = write_checkpoint(str(tmp_path / "ckpt"), tensors)
    model = build_model(spec)
    report = load_official_weights(model, spec, prefix)
    assert report.layout == "legacy"
    head = next(w for w in model.weights if w.path == "classifier/kernel")
    np.testing.assert_array_equal(
        head.numpy(), tensors["mnasnet-a1/mnas_head/dense/kernel"]
    )


def test_missing_tensor_is_named(tmp_path) -> None:
    spec = _spec("mnasnet-a1")
    tensors = _random_tensors(spec)
    gone = "mnasnet-a1/mnas_net_model/mnas_blocks_5/conv2d_16/kernel"
    del tensors[gone]
    prefix = write_checkpoint(str(tmp_path / "ckpt"), tensors)
    model = build_model(spec)
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(MissingTensorError) as error:
        load_official_weights(model, spec, prefix)
    assert (
        f"lacks 1 tensor(s): '{gone}' (for Keras weight "
        "'block2_layer2_project_conv/kernel')" in str(error.value)
    )
    for weight, value in zip(model.weights, before, strict=True):  # Untouched.
        np.testing.assert_array_equal(weight.numpy(), value)


def test_misshapen_tensor_is_named_with_its_keras_weight(tmp_path) -> None:
    spec = _spec("mnasnet-a1")
    tensors = _random_tensors(spec)
    bad = "mnasnet-a1/mnas_stem/batch_normalization/gamma"
    tensors[bad] = np.zeros((31,), np.float32)
    prefix = write_checkpoint(str(tmp_path / "ckpt"), tensors)
    with pytest.raises(ShapeMismatchError) as error:
        load_official_weights(build_model(spec), spec, prefix)
    assert str(error.value) == (
        f"checkpoint tensor '{bad}' has shape (31,) but Keras weight "
        "'stem_bn/gamma' has shape (32,); the model was built at width 1, and a "
        "width-scaled official checkpoint keeps its base model's scope (e.g. "
        "'mnasnet-a1' for x0.75): build it with the checkpoint's width "
        "multiplier (--width_multiplier)"
    )


def test_a_scaled_checkpoint_loaded_at_width_one_hints_at_the_multiplier(
    tmp_path,
) -> None:
    # Official A1 x0.75 checkpoints keep the scope 'mnasnet-a1'.
    scaled = get_preset("mnasnet-a1", width_multiplier=0.75).replace(resolution=32)
    prefix = write_checkpoint(str(tmp_path / "ckpt"), _random_tensors(scaled))
    assert detect_model_name(prefix) == "mnasnet-a1"
    spec = _spec("mnasnet-a1")
    with pytest.raises(ShapeMismatchError) as error:
        load_official_weights(build_model(spec), spec, prefix)
    assert "has shape (3, 3, 24, 1) but Keras weight 'block0_layer0_dwconv" in str(
        error.value
    )
    assert str(error.value).endswith("multiplier (--width_multiplier)")
    load_official_weights(build_model(scaled), scaled, prefix)  # Fits at x0.75.


def test_wrong_class_count_is_a_shape_mismatch(tmp_path) -> None:
    spec = _spec("mnasnet-b1")
    prefix = write_checkpoint(str(tmp_path / "ckpt"), _random_tensors(spec))
    with pytest.raises(ShapeMismatchError) as error:
        load_official_weights(build_model(spec, num_classes=1001), spec, prefix)
    assert str(error.value).endswith(
        "Keras weight 'classifier/kernel' has shape (1280, 1001)"
    )  # No hint at the width: the class count differs.


def test_unexpected_tensors_are_reported(tmp_path) -> None:
    spec = _spec("mnasnet-b1")
    tensors = _random_tensors(spec)
    extra = "mnasnet-b1/mnas_head/dense_1/kernel"
    tensors[extra] = np.zeros((1280, 10), np.float32)
    prefix = write_checkpoint(str(tmp_path / "ckpt"), tensors)
    with pytest.raises(UnexpectedTensorError) as error:
        load_official_weights(build_model(spec), spec, prefix)
    assert f"fit no Keras weight of mnasnet-b1: '{extra}'" in str(error.value)
