"""Proxy-task input pipeline: the data every candidate is trained and scored on.

The search trains thousands of candidates on the same small proxy task, so the
examples are decoded, resized to the proxy resolution and held in memory once
(as ``uint8``); each training run then builds a fresh ``tf.data`` pipeline over
those arrays, so every candidate sees the same, seeded sequence of batches.

Sources, chosen by ``DataConfig.dataset``:

* ``'digits'`` (the embedded default): scikit-learn's 1797 handwritten 8x8
  digits, which ship inside the installed package, so a search needs no
  download.
* ``'cluttered_digits'`` (embedded, harder): 5,391 32x32 canvases generated
  deterministically from those digits by ``mnas.train.cluttered`` (random
  position, scale, rotation and contrast, distractor fragments of other
  digits, noise); harder than the plain digits, which saturate, but too
  hard for a MnasNet-sized net within the default proxy budget
  (docs/proxy.md measures both).
* ``'folder:<path>'``: a directory of class-named image folders, read through
  tfds' ``ImageFolder`` builder. Both ``<path>/<class>/<image>`` and the
  builder's own ``<path>/train/<class>/<image>`` layouts are accepted; only
  the ``train`` split is used.
* any other string: a tensorflow-datasets name, read from ``data_dir``.

Only the source's ``train`` split is read. The validation split that the reward
is computed on is carved from it deterministically (seeded), never taken from
the test split, as in the paper's proxy task.

Model inputs are ``float32`` RGB images in ``PIXEL_RANGE`` = [-1, 1]
(``pixel / 127.5 - 1``, the MobileNet convention), so models need no
rescaling layer and int8 calibration data matches what training saw.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from mnas.train.data_config import (
    CLUTTERED_DIGITS,
    DIGITS,
    EMBEDDED_DATASETS,
    FOLDER_PREFIX,
    IMAGE_EXTENSIONS,
    DataConfig,
    DataError,
    DatasetNotPreparedError,
    ImageFolderError,
    UnknownDatasetError,
)

_READ_BATCH = 256
_MAX_REPORTED_BAD_FILES = 5


@dataclass(frozen=True, eq=False)
class ProxyData:
    """The proxy task's examples, held in memory at the proxy resolution.

    ``train_images`` and ``validation_images`` are unaugmented ``uint8`` arrays
    of shape (N, resolution, resolution, 3); the ``*_indices`` fields give each
    example's position in the source's train split, which shows the two sets
    are disjoint and lets a trial record exactly what it was scored on.
    """

    config: DataConfig
    description: str
    class_names: tuple[str, ...]
    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    validation_images: np.ndarray = field(repr=False)
    validation_labels: np.ndarray = field(repr=False)
    train_indices: np.ndarray = field(repr=False)
    validation_indices: np.ndarray = field(repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_train(self) -> int:
        return int(self.train_labels.shape[0])

    @property
    def num_validation(self) -> int:
        return int(self.validation_labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Model input shape (height, width, channels)."""
        return (self.config.resolution, self.config.resolution, 3)

    @property
    def train_batch_size(self) -> int:
        """Batch size actually used for training (smaller only on tiny sets)."""
        return min(self.config.batch_size, self.num_train)

    @property
    def steps_per_epoch(self) -> int:
        """Full training batches in one pass (the last partial one is dropped)."""
        return self.num_train // self.train_batch_size

    @property
    def train(self) -> tf.data.Dataset:
        """One epoch of shuffled, augmented, batched training data.

        Built afresh on every access so that each candidate sees the same
        seeded sequence of batches, whatever was trained before it in this
        process; iterating it again gives the next epoch's (seeded) order.
        """
        cfg = self.config
        ds = tf.data.Dataset.from_tensor_slices((self.train_images, self.train_labels))
        ds = ds.shuffle(self.num_train, seed=cfg.seed, reshuffle_each_iteration=True)
        if cfg.augment or cfg.random_flip:
            seeds = tf.data.Dataset.random(
                seed=cfg.seed, rerandomize_each_iteration=True
            ).batch(2)
            augment = _make_augment(cfg.resolution, cfg.augment, cfg.random_flip)
            ds = tf.data.Dataset.zip(ds, seeds).map(
                augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
            )
        else:
            ds = ds.map(_scale_example, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(self.train_batch_size, drop_remainder=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    @property
    def validation(self) -> tf.data.Dataset:
        """The held-out validation split, batched, in a fixed order."""
        ds = tf.data.Dataset.from_tensor_slices(
            (self.validation_images, self.validation_labels)
        )
        ds = ds.map(_scale_example, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(self.config.batch_size).prefetch(tf.data.AUTOTUNE)

    def representative_images(self, n: int = 100) -> np.ndarray:
        """Up to ``n`` unaugmented training images, scaled as model inputs.

        For int8 post-training quantization, whose calibration must see the
        same input distribution as training.
        """
        if n < 1:
            raise DataError(f"n must be at least 1, got {n}")
        return scale_pixels(self.train_images[:n]).numpy()


def scale_pixels(images: tf.Tensor | np.ndarray) -> tf.Tensor:
    """Maps ``uint8`` pixels to the model input range ``PIXEL_RANGE``."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def load_proxy_data(config: DataConfig) -> ProxyData:
    """Reads the configured source, carves the validation split and batches.

    Raises:
      DataError: bad config, unknown dataset, unprepared tfds dataset, missing,
        empty or unreadable image folder, or too few examples to split.
    """
    with _open_source(config) as source:
        n_read, n_val = _plan_split(source.total, config, source.description)
        images, labels = source.read(n_read)
    if len(labels) != n_read:  # Metadata and files disagree; never mis-split.
        raise DataError(
            f"{source.description} yielded {len(labels)} examples where its "
            f"metadata promised {n_read}"
        )
    order = _split_order(n_read, source.groups, config.seed)
    val_idx = np.sort(order[:n_val])
    train_idx = np.sort(order[n_val:])
    return ProxyData(
        config=config,
        description=source.description,
        class_names=source.class_names,
        train_images=images[train_idx],
        train_labels=labels[train_idx],
        validation_images=images[val_idx],
        validation_labels=labels[val_idx],
        train_indices=train_idx,
        validation_indices=val_idx,
    )


# --------------------------------------------------------------------------
# Splitting and per-example transforms.


def _plan_split(total: int, config: DataConfig, description: str) -> tuple[int, int]:
    """Returns (examples to read, of which validation) for the source's size.

    The validation share is taken from the whole train split; the caps then
    trim both sets, and only the needed prefix of the split is read.
    """
    n_val = max(1, round(total * config.validation_fraction))
    if config.max_eval_examples is not None:
        n_val = min(n_val, config.max_eval_examples)
    n_train = total - n_val
    if config.max_train_examples is not None:
        n_train = min(n_train, config.max_train_examples)
    if n_train < 1:
        raise DataError(
            f"{description} has {total} training example(s): too few to hold out "
            f"a validation split (validation_fraction={config.validation_fraction})"
        )
    return n_train + n_val, n_val


def _split_order(n: int, groups: np.ndarray | None, seed: int) -> np.ndarray:
    """A seeded order of the first ``n`` examples; validation takes its head.

    With ``groups`` (one id per example, such as the source digit of each
    generated image), whole groups are shuffled and kept together, so the
    held-out split never holds a rendering of a digit that training saw
    (except in the one group the boundary may cut).
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.permutation(n)
    ids = groups[:n]
    rank = rng.permutation(int(ids.max()) + 1)[ids]
    tie = rng.permutation(n)
    return np.lexsort((tie, rank))


def _scale_example(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return scale_pixels(image), label


def _make_augment(
    resolution: int, crop: bool, flip: bool
) -> Callable[[tuple[tf.Tensor, tf.Tensor], tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """Pad-and-crop (CIFAR style, 1/8 of the side) and optional flips.

    Stateless ops keyed by a seeded random stream keep the augmentation
    reproducible even though it runs in parallel.
    """
    pad = max(1, resolution // 8)

    def augment(
        example: tuple[tf.Tensor, tf.Tensor], seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        image, label = example
        seeds = tf.random.experimental.stateless_split(seed, num=2)
        if crop:
            padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.stateless_random_crop(
                padded, (resolution, resolution, 3), seed=seeds[0]
            )
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
        return scale_pixels(image), label

    return augment


def _to_proxy_image(image: tf.Tensor, resolution: int) -> tf.Tensor:
    """Any HWC uint8 image -> centre-cropped square RGB ``uint8`` at resolution."""
    channels = image.shape[-1]
    if channels in (1, 2):  # Grey (+ alpha).
        image = tf.tile(image[..., :1], [1, 1, 3])
    elif channels == 4:  # RGBA.
        image = image[..., :3]
    elif channels != 3:
        raise DataError(f"images must have 1 to 4 channels, got {channels}")
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    image = tf.image.crop_to_bounding_box(
        image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side
    )
    image = tf.image.resize(image, (resolution, resolution), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def _collect(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for image_batch, label_batch in ds.batch(_READ_BATCH).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


# --------------------------------------------------------------------------
# Sources. Each knows its size and class names before reading anything and
# reads the first ``n`` examples of its train split on demand.


@dataclass(frozen=True)
class _Source:
    description: str
    total: int
    class_names: tuple[str, ...]
    read: Callable[[int], tuple[np.ndarray, np.ndarray]]
    groups: np.ndarray | None = None  # Examples to keep on one side of the split.


@contextlib.contextmanager
def _open_source(config: DataConfig) -> Iterator[_Source]:
    """Opens the configured source; some need a scratch folder while reading."""
    folder = config.image_folder
    if config.dataset == DIGITS:
        yield _digits_source(config.resolution)
    elif config.dataset == CLUTTERED_DIGITS:
        yield _cluttered_source(config.resolution)
    elif folder is not None:
        with _folder_source(folder, config.resolution) as source:
            yield source
    else:
        yield _tfds_source(config)


def _digits_source(resolution: int) -> _Source:
    from sklearn.datasets import load_digits  # Heavy; only the default needs it.

    digits = load_digits()
    pixels = digits.images.astype(np.float32) * (255.0 / 16.0)  # Values 0..16.
    return _Source(
        description="sklearn digits",
        total=len(digits.target),
        class_names=tuple(str(c) for c in digits.target_names),
        read=lambda n: (
            _grey_to_proxy(pixels[:n], resolution),
            digits.target[:n].astype(np.int64),
        ),
    )


def _cluttered_source(resolution: int) -> _Source:
    from mnas.train.cluttered import make_cluttered_digits

    generated = make_cluttered_digits()
    return _Source(
        description="cluttered digits (generated from sklearn digits)",
        total=len(generated.labels),
        class_names=generated.class_names,
        read=lambda n: (
            _grey_to_proxy(generated.images[:n].astype(np.float32), resolution),
            generated.labels[:n],
        ),
        groups=generated.groups,
    )


def _grey_to_proxy(pixels: np.ndarray, resolution: int) -> np.ndarray:
    """Grey float images (N, H, W), values 0..255 -> RGB ``uint8`` at resolution."""
    grey = tf.constant(pixels[:, :, :, np.newaxis])
    if grey.shape[1:3] != (resolution, resolution):
        grey = tf.image.resize(grey, (resolution, resolution), method="bilinear")
    images = tf.cast(tf.clip_by_value(tf.round(grey), 0.0, 255.0), tf.uint8)
    return np.repeat(images.numpy(), 3, axis=-1)


def _tfds_source(config: DataConfig) -> _Source:
    import tensorflow_datasets as tfds

    name = config.dataset
    try:
        builder = tfds.builder(name, data_dir=config.data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise UnknownDatasetError(_unknown_dataset_message(name)) from None
    except (ValueError, AssertionError) as err:  # Malformed name/config/version.
        first_line = str(err).strip().splitlines()[0]
        raise UnknownDatasetError(
            f"cannot open tensorflow-datasets dataset '{name}': {first_line}"
        ) from None
    data_dir = str(builder.data_dir_root)
    if not builder.is_prepared():
        _prepare(builder, name, data_dir, config)
    info = builder.info
    if "train" not in info.splits:
        raise DataError(
            f"dataset '{name}' has no 'train' split (splits: {sorted(info.splits)}); "
            "the proxy task carves its validation split from train"
        )
    keys = info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
        raise DataError(f"dataset '{name}' has no (image, label) supervised keys")
    image_feature, label_feature = info.features[keys[0]], info.features[keys[1]]
    if not isinstance(image_feature, tfds.features.Image) or not isinstance(
        label_feature, tfds.features.ClassLabel
    ):
        raise DataError(
            f"dataset '{name}' is not image classification: its supervised keys "
            f"are {type(image_feature).__name__} and {type(label_feature).__name__}"
        )
    total = info.splits["train"].num_examples
    resolution = config.resolution

    def read(n: int) -> tuple[np.ndarray, np.ndarray]:
        split = "train" if n >= total else f"train[:{n}]"
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        ds = ds.map(
            lambda image, label: (_to_proxy_image(image, resolution), label),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return _collect(ds)

    names = label_feature.names or [str(i) for i in range(label_feature.num_classes)]
    return _Source(
        description=f"tfds dataset '{name}' in '{data_dir}'",
        total=total,
        class_names=tuple(names),
        read=read,
    )


def _unknown_dataset_message(name: str) -> str:
    import tensorflow_datasets as tfds

    message = (
        f"unknown dataset '{name}': it is not an embedded one "
        f"({', '.join(repr(e) for e in EMBEDDED_DATASETS)}), "
        f"not '{FOLDER_PREFIX}<path>', and not a tensorflow-datasets name"
    )
    known = tfds.list_builders(with_community_datasets=False)  # No network.
    close = difflib.get_close_matches(name.lower(), known, n=3)
    if close:
        message += f" (did you mean {', '.join(repr(c) for c in close)}?)"
    return message


def _prepare(builder, name: str, data_dir: str, config: DataConfig) -> None:
    """Builds a missing tfds dataset if allowed; otherwise says how to."""
    import tensorflow_datasets as tfds

    if not (config.download or config.manual_dir):
        raise DatasetNotPreparedError(
            f"dataset '{name}' is not prepared in data_dir '{data_dir}' and "
            f"downloading is off: prepare it with `tfds build {name} "
            f"--data_dir={data_dir}` (add --manual_dir=<dir> for datasets "
            "downloaded by hand), allow downloading (download=True), or use the "
            f"embedded default '{DIGITS}'"
        )
    download_config = tfds.download.DownloadConfig(
        manual_dir=config.manual_dir,
        try_download_gcs=config.download,  # A manual build stays off the network.
    )
    try:
        builder.download_and_prepare(download_config=download_config)
    except Exception as err:  # tfds raises many kinds; the cause is kept.
        raise DatasetNotPreparedError(
            f"could not prepare dataset '{name}' in data_dir '{data_dir}' "
            f"(manual_dir={config.manual_dir!r}): {type(err).__name__}: {err}"
        ) from err


@contextlib.contextmanager
def _folder_source(root: str, resolution: int) -> Iterator[_Source]:
    """Reads ``root`` through tfds' ImageFolder, whatever its layout."""
    import tensorflow_datasets as tfds

    path = os.path.abspath(os.path.expanduser(root))
    if not os.path.exists(path):
        raise ImageFolderError(f"image folder '{root}' does not exist")
    if not os.path.isdir(path):
        raise ImageFolderError(f"image folder '{root}' is not a directory")
    train_dir = os.path.join(path, "train")
    try:
        split_layout = os.path.isdir(train_dir) and bool(_image_classes(train_dir))
        classes = _image_classes(train_dir if split_layout else path)
    except OSError as err:
        raise ImageFolderError(f"cannot read image folder '{root}': {err}") from None
    if not classes:
        raise ImageFolderError(
            f"image folder '{root}' contains no images: expected "
            "<folder>/<class>/<image> or <folder>/train/<class>/<image> with "
            f"{'/'.join(IMAGE_EXTENSIONS)} files"
        )
    if len(classes) < 2:
        raise ImageFolderError(
            f"image folder '{root}' has a single class ('{classes[0]}'); "
            "a classifier needs at least 2"
        )
    with contextlib.ExitStack() as stack:
        builder_root = path
        if not split_layout:  # ImageFolder wants <root>/<split>/<class>/<image>.
            builder_root = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="mnas_image_folder_")
            )
            os.symlink(path, os.path.join(builder_root, "train"))
        builder = tfds.folder_dataset.ImageFolder(builder_root)
        yield _Source(
            description=f"image folder '{root}'",
            total=builder.info.splits["train"].num_examples,
            class_names=tuple(builder.info.features["label"].names),
            read=lambda n: _read_image_folder(
                builder,
                root,
                n,
                resolution,
                # Files are named through the scratch link; report the user's.
                file_name=lambda p: os.path.join(
                    train_dir if split_layout else path,
                    os.path.relpath(p, os.path.join(builder_root, "train")),
                ),
            ),
        )


def _read_image_folder(
    builder, root: str, n: int, resolution: int, file_name: Callable[[str], str]
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes the first ``n`` images; names the files that cannot be decoded."""
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(
        split="train",
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    ).take(n)
    decoded = ds.map(
        lambda ex: (_to_proxy_image(_decode(ex["image"]), resolution), ex["label"]),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    try:
        return _collect(decoded)
    except tf.errors.OpError:
        paths = ds.map(lambda ex: ex["image/filename"]).as_numpy_iterator()
        bad = [file_name(p.decode()) for p in paths if not _decodes(p)]
        if not bad:
            raise
        shown = ", ".join(bad[:_MAX_REPORTED_BAD_FILES])
        more = len(bad) - _MAX_REPORTED_BAD_FILES
        raise ImageFolderError(
            f"image folder '{root}' has {len(bad)} unreadable image file(s): "
            f"{shown}{f' and {more} more' if more > 0 else ''}"
        ) from None


def _decode(encoded: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _decodes(path: bytes) -> bool:
    try:
        _decode(tf.io.read_file(path))
    except tf.errors.OpError:
        return False
    return True


def _image_classes(directory: str) -> list[str]:
    """Sorted sub-folders that hold at least one image file."""
    return sorted(
        d
        for d in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, d))
        and any(
            f.lower().endswith(IMAGE_EXTENSIONS)
            for f in os.listdir(os.path.join(directory, d))
        )
    )
