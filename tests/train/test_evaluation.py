"""Evaluation: the official crop arithmetic, normalization, sources, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mnas.train.data_config import DataError
from mnas.train.evaluation import (
    MEAN_RGB,
    STDDEV_RGB,
    EvalConfig,
    EvalResult,
    batches,
    center_crop_window,
    decode_and_center_crop,
    normalize,
    open_source,
    score,
)


def test_official_constants_are_imagenets_statistics_in_pixel_units() -> None:
    # The official preprocessing normalises 0-255 pixels with ImageNet's
    # per-channel mean and standard deviation of 0-1 pixels, times 255.
    imagenet_mean, imagenet_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    assert pytest.approx([255 * m for m in imagenet_mean]) == MEAN_RGB
    assert pytest.approx([255 * s for s in imagenet_std]) == STDDEV_RGB


def test_center_crop_keeps_224_of_256() -> None:
    assert center_crop_window(256, 320) == (16, 48, 224)
    assert center_crop_window(500, 375) == (86, 24, 328)  # int(0.875 * 375) = 328
    assert center_crop_window(33, 33, 32, 0) == (0, 0, 33)


def _jpeg(height: int, width: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels, quality=100).numpy(), pixels


def test_decode_and_center_crop_matches_manual_crop_and_resize() -> None:
    encoded, _ = _jpeg(40, 60)
    decoded = tf.io.decode_jpeg(encoded, channels=3)
    top, left, side = center_crop_window(40, 60, 16, 4)
    crop = tf.cast(decoded[top : top + side, left : left + side], tf.float32)
    expected = tf.compat.v1.image.resize_bicubic(crop[None], [16, 16])[0]
    got = decode_and_center_crop(tf.constant(encoded), 16, 4, "bicubic")
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-3)
    assert got.shape == (16, 16, 3)


def test_png_gets_the_same_crop_as_jpeg() -> None:
    pixels = np.full((30, 50, 3), 200, np.uint8)
    png = tf.io.encode_png(pixels)
    out = decode_and_center_crop(png, 8, 32, "bilinear")
    np.testing.assert_allclose(out.numpy(), 200.0)


def test_normalize() -> None:
    pixels = tf.constant([[[123.675, 116.28, 103.53]]])
    np.testing.assert_allclose(normalize(pixels, "official").numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(normalize(tf.constant([255.0]), "mnas").numpy(), 1.0)


def _folder(root, classes=("cat", "dog"), per_class=3, size=(20, 28)) -> None:
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            encoded, _ = _jpeg(*size, seed=10 * index + i)
            (root / name / f"{i}.jpg").write_bytes(encoded)


def test_folder_source_labels_by_sorted_class_name(tmp_path) -> None:
    _folder(tmp_path / "validation", classes=("zebra", "ant"), per_class=2)
    config = EvalConfig(dataset=f"folder:{tmp_path}", image_size=8, batch_size=3)
    source = open_source(config)
    assert source.class_names == ("ant", "zebra")
    assert source.num_examples == 4
    got = [(x.shape, list(y)) for x, y in batches(source, config).as_numpy_iterator()]
    assert got == [((3, 8, 8, 3), [0, 0, 1]), ((1, 8, 8, 3), [1])]
    limited = open_source(EvalConfig(dataset=f"folder:{tmp_path}", max_examples=3))
    assert limited.num_examples == 3


def test_empty_folder_and_bad_config_are_refused(tmp_path) -> None:
    with pytest.raises(DataError, match="has no images"):
        open_source(EvalConfig(dataset=f"folder:{tmp_path}"))
    with pytest.raises(DataError, match="resize_method must be one of"):
        EvalConfig(dataset="x", resize_method="area")


def test_score_counts_top1_and_top5() -> None:
    scores = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]] + np.arange(10) / 100
    labels = np.array([0, 9, 8, 5])  # Right; 2nd best; 3rd best; 6th best.
    result = score(
        lambda images: scores[images[:, 0].astype(int)],
        [(np.arange(4)[:, None], labels)],
    )
    assert (result.top1, result.top5, result.num_examples) == (0.25, 0.75, 4)
    other = EvalResult(0, 0, 4, 0, np.array([0, 1, 0, 0]), labels)
    assert result.agreement(other) == 0.5
