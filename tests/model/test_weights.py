"""Native weights: round trip of a trained model, arch checks, damaged folders,
and agreement of its float and int8 TFLite exports with the Keras model."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from mnas.model.builder import build_model
from mnas.model.weights import (
    ArchMismatchError,
    WeightsError,
    WeightsMeta,
    load_any,
    load_weights,
    read_meta,
    save_weights,
)
from mnas.search_space import get_preset, parse_arch
from mnas.train.data import load_proxy_data
from mnas.train.data_config import DataConfig
from mnas.train.evaluation import (
    array_batches,
    keras_predictor,
    score,
    tflite_predictor,
)
from mnas.train.proxy import train_and_evaluate
from mnas.train.proxy_config import TrainerConfig

RES = 16
# Small enough to train to ~0.9 on digits in three short epochs, and still
# MnasNet-shaped: no-expansion first block, expansion, SE, identity skips.
ARCH = "r1_k3_s11_e1_i16_o16_noskip,r2_k3_s22_e3_i16_o24_se0.25,r1_k3_s22_e3_i24_o32"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small MnasNet trained three epochs on the embedded digits, saved."""
    data = load_proxy_data(DataConfig(resolution=RES))
    spec = parse_arch(ARCH).replace(resolution=RES, stem_filters=16)
    keras.utils.set_random_seed(0)
    model = build_model(spec, data.image_shape, data.num_classes)
    result = train_and_evaluate(model, data, TrainerConfig(epochs=3))
    folder = str(tmp_path_factory.mktemp("weights") / "small")
    meta = WeightsMeta(spec, data.num_classes, source="test", extra={"acc": 1})
    save_weights(model, meta, folder)
    return data, spec, model, result, folder


def _validation(data):
    from mnas.train.data import scale_pixels

    return scale_pixels(data.validation_images).numpy(), data.validation_labels


def test_reloaded_model_scores_the_same(trained) -> None:
    data, spec, model, result, folder = trained
    images, labels = _validation(data)
    before = score(keras_predictor(model), array_batches(images, labels))
    assert before.top1 == pytest.approx(result.accuracy, abs=1e-6)
    reloaded, meta = load_weights(folder)
    after = score(keras_predictor(reloaded), array_batches(images, labels))
    assert after.top1 == before.top1
    np.testing.assert_array_equal(after.predictions, before.predictions)
    assert meta.arch.block_strings == spec.block_strings
    assert (meta.num_classes, meta.preprocessing, meta.extra) == (
        10,
        "mnas",
        {"acc": 1},
    )
    for a, b in zip(model.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded = load_any(folder)
    assert loaded.kind == "native" and loaded.preprocessing == "mnas"


def test_tflite_exports_agree_with_keras(trained) -> None:
    from mnas.latency.export import export_tflite

    data, spec, model, result, folder = trained
    images, labels = _validation(data)
    reference = score(keras_predictor(model), array_batches(images, labels))
    float_result = score(
        tflite_predictor(export_tflite(model)), array_batches(images, labels)
    )
    int8_result = score(
        tflite_predictor(
            export_tflite(
                model,
                "int8",
                data.representative_images(100),
                num_calibration_samples=100,
            )
        ),
        array_batches(images, labels),
    )
    float_agreement = reference.agreement(float_result)
    int8_agreement = reference.agreement(int8_result)
    print(
        f"keras top-1 {reference.top1:.4f}; float {float_result.top1:.4f} "
        f"(agreement {float_agreement:.4f}); int8 {int8_result.top1:.4f} "
        f"(agreement {int8_agreement:.4f}) over {reference.num_examples} images"
    )
    assert float_agreement >= 0.9
    assert int8_agreement >= 0.8


def test_other_architecture_is_refused(trained) -> None:
    *_, folder = trained
    other = get_preset("mnasnet-a1")
    with pytest.raises(ArchMismatchError, match="stem_filters: stored 16, asked 32"):
        load_weights(folder, other)
    # Resolution, name and dropout do not change the weights.
    same = parse_arch(ARCH).replace(stem_filters=16, resolution=64, dropout_rate=0.5)
    model, _ = load_weights(folder, same)
    assert model.input_shape == (None, 64, 64, 3)


def test_damaged_folder_is_refused(trained, tmp_path) -> None:
    data, spec, model, _, _ = trained
    folder = str(tmp_path / "w")
    save_weights(model, WeightsMeta(spec, 10), folder)
    with open(f"{folder}/model.weights.h5", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(WeightsError, match="does not match the checksum"):
        read_meta(folder)
    meta = json.loads((tmp_path / "w" / "weights.json").read_text())
    assert meta["arch"]["blocks"] == list(spec.block_strings)
    with pytest.raises(WeightsError, match="holds no weights.json"):
        read_meta(str(tmp_path))
    with pytest.raises(WeightsError, match="neither an mnas weights folder"):
        load_any(str(tmp_path))
