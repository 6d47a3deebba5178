"""Proxy data: the embedded digits, real tfds and image-folder reads, bad input."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from mnas.train import data as data_lib
from mnas.train.data import load_proxy_data
from mnas.train.data_config import (
    DataConfig,
    DataError,
    DatasetNotPreparedError,
    ImageFolderError,
    UnknownDatasetError,
)

DIGITS_TOTAL = 1797


# --------------------------------------------------------------------------
# Tiny tfds datasets the tests prepare themselves (no network needed).


class MnasTestShapes(tfds.core.GeneratorBasedBuilder):
    """Grey, non-square images: dark for class 0, light for class 1."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(12, 20, 1)),
                    "label": tfds.features.ClassLabel(names=["dark", "light"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(30),
            "test": self._generate_examples(7),
        }

    def _generate_examples(self, n: int):
        for i in range(n):
            label = i % 2
            image = np.full((12, 20, 1), 40 if label == 0 else 220, np.uint8)
            yield i, {"image": image, "label": label}


class MnasTestManual(tfds.core.GeneratorBasedBuilder):
    """Reads its labels from the manual directory, like hand-downloaded sets."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put labels.txt in the manual directory."

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 3)),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        labels = (dl_manager.manual_dir / "labels.txt").read_text().split()
        return {"train": self._generate_examples([int(x) for x in labels])}

    def _generate_examples(self, labels: list[int]):
        for i, label in enumerate(labels):
            yield i, {"image": np.full((8, 8, 3), 80 * label, np.uint8), "label": label}


@pytest.fixture(scope="module")
def digits() -> data_lib.ProxyData:
    return load_proxy_data(DataConfig(resolution=16, batch_size=32))


def _write_image(path: str, value: int, shape=(10, 14, 3)) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = np.full(shape, value, np.uint8)
    if path.endswith(".png"):
        encoded = tf.io.encode_png(image)
    else:
        encoded = tf.io.encode_jpeg(image, quality=100)
    tf.io.write_file(path, encoded)


# --------------------------------------------------------------------------
# Embedded default.


def test_digits_shapes_classes_and_counts(digits):
    assert digits.description == "sklearn digits"
    assert digits.class_names == tuple(str(i) for i in range(10))
    assert digits.num_classes == 10
    assert digits.num_validation == round(DIGITS_TOTAL * 0.2)
    assert digits.num_train + digits.num_validation == DIGITS_TOTAL
    assert digits.image_shape == (16, 16, 3)
    assert digits.train_images.shape == (digits.num_train, 16, 16, 3)
    assert digits.train_images.dtype == np.uint8
    assert set(np.unique(digits.train_labels)) == set(range(10))
    # Grey digits replicated to three identical channels.
    np.testing.assert_array_equal(
        digits.train_images[..., 0], digits.train_images[..., 2]
    )

    images, labels = next(iter(digits.train))
    assert images.shape == (32, 16, 16, 3) and images.dtype == tf.float32
    assert labels.shape == (32,)
    assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0
    assert digits.steps_per_epoch == digits.num_train // 32
    assert sum(1 for _ in digits.train) == digits.steps_per_epoch
    assert sum(int(y.shape[0]) for _, y in digits.validation) == digits.num_validation


def test_validation_split_is_disjoint_deterministic_and_seeded(digits):
    train, val = set(digits.train_indices), set(digits.validation_indices)
    assert not train & val
    assert train | val == set(range(DIGITS_TOTAL))

    again = load_proxy_data(DataConfig(resolution=16, batch_size=32))
    np.testing.assert_array_equal(again.validation_indices, digits.validation_indices)
    np.testing.assert_array_equal(again.train_images, digits.train_images)
    other = load_proxy_data(DataConfig(resolution=16, batch_size=32, seed=1))
    assert set(other.validation_indices) != val


def test_training_batches_are_seeded_and_reshuffled_each_epoch(digits):
    def first_batches(ds):
        return [x.numpy() for x, _ in ds.take(2)]

    fresh_a, fresh_b = first_batches(digits.train), first_batches(digits.train)
    np.testing.assert_array_equal(fresh_a[0], fresh_b[0])  # Same sequence per run.

    ds = digits.train
    epoch_1, epoch_2 = first_batches(ds), first_batches(ds)
    assert not np.array_equal(epoch_1[0], epoch_2[0])  # A new order each epoch.


def test_without_augmentation_batches_are_the_scaled_images():
    data = load_proxy_data(
        DataConfig(resolution=8, batch_size=16, augment=False, max_train_examples=64)
    )
    seen = np.concatenate([x.numpy() for x, _ in data.train])
    expected = data_lib.scale_pixels(data.train_images).numpy()
    assert sorted(map(bytes, seen)) == sorted(map(bytes, expected))


def test_augmentation_moves_pixels_but_keeps_range():
    plain = load_proxy_data(DataConfig(resolution=16, augment=False))
    augmented = load_proxy_data(
        DataConfig(resolution=16, augment=True, random_flip=True)
    )
    x_plain, y_plain = next(iter(plain.train))
    x_aug, y_aug = next(iter(augmented.train))
    np.testing.assert_array_equal(y_plain, y_aug)  # Same shuffle, same examples.
    assert not np.array_equal(x_plain, x_aug)
    assert float(tf.reduce_min(x_aug)) >= -1.0 and float(tf.reduce_max(x_aug)) <= 1.0


def test_caps_limit_both_splits():
    data = load_proxy_data(
        DataConfig(resolution=8, max_train_examples=100, max_eval_examples=40)
    )
    assert (data.num_train, data.num_validation) == (100, 40)
    assert not set(data.train_indices) & set(data.validation_indices)


def test_small_sets_train_in_one_smaller_batch():
    data = load_proxy_data(
        DataConfig(resolution=8, batch_size=64, max_train_examples=10)
    )
    assert (data.train_batch_size, data.steps_per_epoch) == (10, 1)


def test_representative_images_are_model_inputs(digits):
    images = digits.representative_images(5)
    assert images.shape == (5, 16, 16, 3) and images.dtype == np.float32
    np.testing.assert_allclose(images, digits.train_images[:5] / 127.5 - 1.0, atol=1e-6)


# --------------------------------------------------------------------------
# Embedded cluttered digits.


def test_cluttered_digits_load_with_documented_size_and_a_split_by_source_digit():
    data = load_proxy_data(DataConfig(dataset="cluttered_digits"))
    assert data.description == "cluttered digits (generated from sklearn digits)"
    assert data.class_names == tuple(str(i) for i in range(10))
    assert data.num_train + data.num_validation == 3 * DIGITS_TOTAL
    assert data.num_validation == round(3 * DIGITS_TOTAL * 0.2)
    assert data.train_images.shape == (data.num_train, 32, 32, 3)
    # Images are ordered variant-major: index % 1797 is the source digit.
    train_sources = set(data.train_indices % DIGITS_TOTAL)
    val_sources = set(data.validation_indices % DIGITS_TOTAL)
    assert len(train_sources & val_sources) <= 1  # Only where the boundary cuts.
    again = load_proxy_data(DataConfig(dataset="cluttered_digits"))
    np.testing.assert_array_equal(again.validation_images, data.validation_images)


def test_grouped_split_keeps_groups_together_and_is_seeded():
    groups = np.repeat(np.arange(10), 3)
    order = data_lib._split_order(30, groups, seed=0)
    assert sorted(order) == list(range(30))
    runs = groups[order].reshape(10, 3)  # Consecutive triples share a group.
    assert all(len(set(run)) == 1 for run in runs)
    np.testing.assert_array_equal(order, data_lib._split_order(30, groups, seed=0))
    assert not np.array_equal(order, data_lib._split_order(30, groups, seed=1))
    # Without groups: a plain seeded permutation.
    np.testing.assert_array_equal(
        data_lib._split_order(30, None, seed=3),
        np.random.default_rng(3).permutation(30),
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": " "}, "dataset must not be empty"),
        (
            {"dataset": "folder:"},
            "dataset 'folder:' must be followed by a directory path",
        ),
        ({"resolution": 4}, "resolution must be an integer in [8, 1024], got 4"),
        ({"resolution": 5000}, "resolution must be an integer in [8, 1024], got 5000"),
        (
            {"validation_fraction": 1.0},
            "validation_fraction must be a number in (0, 1), got 1.0",
        ),
        (
            {"validation_fraction": "0.2"},
            "validation_fraction must be a number in (0, 1), got '0.2'",
        ),
        ({"batch_size": 0}, "batch_size must be an integer in [1, 65536], got 0"),
        ({"batch_size": 2.0}, "batch_size must be an integer in [1, 65536], got 2.0"),
        (
            {"max_train_examples": 0},
            "max_train_examples must be an integer in [1, 2147483648] or None, got 0",
        ),
        ({"seed": -1}, "seed must be an integer in [0, 4294967295], got -1"),
        ({"augment": 1}, "augment must be True or False, got 1"),
        (
            {"dataset": None},
            "dataset must be a non-empty string of at most 4096 printable "
            "characters, got None",
        ),
    ],
)
def test_bad_config_values_are_named(kwargs, message):
    with pytest.raises(DataError, match="^" + re.escape(message)):
        DataConfig(**kwargs)


# --------------------------------------------------------------------------
# Image folders through tfds' ImageFolder builder.


def test_image_folder_of_class_folders_loads_with_right_labels(tmp_path):
    root = tmp_path / "pets"
    values = {"cat": 30, "dog": 220}
    for cls, value in values.items():
        for i in range(6):
            _write_image(str(root / cls / f"{i}.png"), value)
    _write_image(str(root / "dog" / "grey.png"), 220, shape=(9, 9, 1))
    _write_image(str(root / "cat" / "photo.jpg"), 30, shape=(20, 11, 3))
    before = sorted(os.listdir(root))

    data = load_proxy_data(
        DataConfig(dataset=f"folder:{root}", resolution=8, batch_size=4)
    )

    assert data.class_names == ("cat", "dog")
    assert data.num_train + data.num_validation == 14
    assert data.num_validation == round(14 * 0.2)
    for images, labels in (
        (data.train_images, data.train_labels),
        (data.validation_images, data.validation_labels),
    ):
        for image, label in zip(images, labels, strict=True):
            expected = values[data.class_names[label]]
            assert abs(int(image.mean()) - expected) <= 2
    assert sorted(os.listdir(root)) == before  # Nothing written into the folder.
    images, _ = next(iter(data.train))
    assert images.shape == (4, 8, 8, 3)


def test_image_folder_with_splits_uses_only_train(tmp_path):
    for split, count in (("train", 5), ("test", 3)):
        for cls, value in (("a", 0), ("b", 255)):
            for i in range(count):
                _write_image(str(tmp_path / split / cls / f"{i}.png"), value)
    before = sorted(os.listdir(tmp_path))
    data = load_proxy_data(DataConfig(dataset=f"folder:{tmp_path}", resolution=8))
    assert data.class_names == ("a", "b")
    assert data.num_train + data.num_validation == 10
    assert sorted(os.listdir(tmp_path)) == before


def test_missing_image_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ImageFolderError) as err:
        load_proxy_data(DataConfig(dataset=f"folder:{missing}"))
    assert str(err.value) == f"image folder '{missing}' does not exist"


def test_image_folder_that_is_a_file(tmp_path):
    path = tmp_path / "file.png"
    path.write_bytes(b"x")
    with pytest.raises(ImageFolderError) as err:
        load_proxy_data(DataConfig(dataset=f"folder:{path}"))
    assert str(err.value) == f"image folder '{path}' is not a directory"


@pytest.mark.parametrize("layout", ["empty", "empty_classes", "no_image_files"])
def test_empty_image_folder(tmp_path, layout):
    if layout != "empty":
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
    if layout == "no_image_files":
        (tmp_path / "a" / "notes.txt").write_text("not an image")
    with pytest.raises(ImageFolderError) as err:
        load_proxy_data(DataConfig(dataset=f"folder:{tmp_path}"))
    assert str(err.value) == (
        f"image folder '{tmp_path}' contains no images: expected "
        "<folder>/<class>/<image> or <folder>/train/<class>/<image> with "
        ".jpg/.jpeg/.png files"
    )


def test_image_folder_with_a_single_class(tmp_path):
    _write_image(str(tmp_path / "only" / "0.png"), 9)
    with pytest.raises(ImageFolderError) as err:
        load_proxy_data(DataConfig(dataset=f"folder:{tmp_path}"))
    assert str(err.value) == (
        f"image folder '{tmp_path}' has a single class ('only'); "
        "a classifier needs at least 2"
    )


def test_unreadable_image_is_named(tmp_path):
    for cls in ("a", "b"):
        for i in range(3):
            _write_image(str(tmp_path / cls / f"{i}.png"), 100)
    bad = tmp_path / "b" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(ImageFolderError) as err:
        load_proxy_data(DataConfig(dataset=f"folder:{tmp_path}", resolution=8))
    assert str(err.value) == (
        f"image folder '{tmp_path}' has 1 unreadable image file(s): {bad}"
    )


# --------------------------------------------------------------------------
# tensorflow-datasets names.


def test_prepared_tfds_dataset_loads_from_data_dir(tmp_path):
    MnasTestShapes(data_dir=str(tmp_path)).download_and_prepare()
    data = load_proxy_data(
        DataConfig(dataset="mnas_test_shapes", data_dir=str(tmp_path), resolution=8)
    )
    assert data.description == f"tfds dataset 'mnas_test_shapes' in '{tmp_path}'"
    assert data.class_names == ("dark", "light")
    assert data.num_train + data.num_validation == 30  # Train only, not test.
    assert data.train_images.shape[1:] == (8, 8, 3)
    for image, label in zip(data.train_images, data.train_labels, strict=True):
        assert abs(int(image.mean()) - (40 if label == 0 else 220)) <= 2


def test_tfds_caps_read_only_a_prefix_of_train(tmp_path):
    MnasTestShapes(data_dir=str(tmp_path)).download_and_prepare()
    data = load_proxy_data(
        DataConfig(
            dataset="mnas_test_shapes",
            data_dir=str(tmp_path),
            resolution=8,
            max_train_examples=10,
            max_eval_examples=3,
        )
    )
    assert (data.num_train, data.num_validation) == (10, 3)
    assert set(data.train_indices) | set(data.validation_indices) == set(range(13))


def test_download_true_prepares_a_missing_dataset(tmp_path):
    data = load_proxy_data(
        DataConfig(dataset="mnas_test_shapes", data_dir=str(tmp_path), download=True)
    )
    assert data.num_train + data.num_validation == 30


def test_manual_dir_reaches_the_builder(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "labels.txt").write_text("0 1 2 0 1 2 0 1 2 2")
    data = load_proxy_data(
        DataConfig(
            dataset="mnas_test_manual",
            data_dir=str(tmp_path / "data"),
            manual_dir=str(manual),
            resolution=8,
        )
    )
    assert data.num_classes == 3
    assert data.num_train + data.num_validation == 10


def test_unknown_tfds_name(tmp_path):
    with pytest.raises(UnknownDatasetError) as err:
        load_proxy_data(DataConfig(dataset="zzqx_no_such_set", data_dir=str(tmp_path)))
    assert str(err.value) == (
        "unknown dataset 'zzqx_no_such_set': it is not an embedded one ('digits', "
        "'cluttered_digits'), not 'folder:<path>', and not a tensorflow-datasets "
        "name"
    )


def test_unknown_tfds_name_suggests_close_names(tmp_path):
    with pytest.raises(UnknownDatasetError, match=r"did you mean 'mnist'"):
        load_proxy_data(DataConfig(dataset="mnst", data_dir=str(tmp_path)))


def test_malformed_tfds_name(tmp_path):
    with pytest.raises(UnknownDatasetError) as err:
        load_proxy_data(DataConfig(dataset="two words", data_dir=str(tmp_path)))
    assert str(err.value) == (
        "cannot open tensorflow-datasets dataset 'two words': "
        "Parsing builder name string two words failed."
    )


def test_unprepared_tfds_dataset_fails_fast_without_downloading(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("download_and_prepare must not be called")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(DatasetNotPreparedError) as err:
        load_proxy_data(DataConfig(dataset="mnist", data_dir=str(tmp_path)))
    assert str(err.value) == (
        f"dataset 'mnist' is not prepared in data_dir '{tmp_path}' and downloading "
        f"is off: prepare it with `tfds build mnist --data_dir={tmp_path}` (add "
        "--manual_dir=<dir> for datasets downloaded by hand), allow downloading "
        "(download=True), or use the embedded default 'digits'"
    )


def test_failed_preparation_is_reported(tmp_path):
    manual = tmp_path / "empty_manual"
    manual.mkdir()
    with pytest.raises(DatasetNotPreparedError) as err:
        load_proxy_data(
            DataConfig(
                dataset="mnas_test_manual",
                data_dir=str(tmp_path / "data"),
                manual_dir=str(manual),
            )
        )
    assert str(err.value).startswith(
        f"could not prepare dataset 'mnas_test_manual' in data_dir "
        f"'{tmp_path / 'data'}' (manual_dir='{manual}'): "
    )
    assert "labels.txt" in str(err.value)
