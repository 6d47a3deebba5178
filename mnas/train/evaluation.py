"""Top-1 / top-5 evaluation with the official MnasNet evaluation preprocessing.

Published accuracies are only reproducible with the preprocessing the
checkpoints were evaluated with; a plain resize or Keras' "inception"
preprocessing costs points. The official recipe (tensorflow/tpu
``models/official/mnasnet/preprocessing.py`` and ``imagenet_input.py``):

1. decode, and crop the centre square of side
   ``int(image_size / (image_size + CROP_PADDING) * min(height, width))``
   (CROP_PADDING = 32, i.e. 224/256 = 87.5% of the shorter side), offset
   ``((side_length - crop + 1) // 2)``;
2. resize to ``image_size`` (224): bicubic in the ResNet/EfficientNet-lineage
   code (``tf.image.resize_bicubic``, TF1 pixel alignment); the TF2-ported
   ``preprocessing.py`` calls ``tf.compat.v1.image.resize``, which is bilinear.
   ``resize_method`` picks either;
3. keep the [0, 255] range, subtract ``MEAN_RGB`` and divide by ``STDDEV_RGB``
   (in the model function, ``mnasnet_main.py``).

Labels: the official ImageNet TFRecords store 1..1000 and the input pipeline
subtracts 1, and the models have ``num_classes=1000`` (no background class),
so tfds ``imagenet2012`` labels (0..999, the same sorted-synset order) need
no offset.

Sources: a tensorflow-datasets name, or ``folder:<path>`` (class-named
sub-folders, sorted names are the labels; ``<path>/<split>/`` is used when it
exists).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from mnas.train.data_config import FOLDER_PREFIX, IMAGE_EXTENSIONS, DataError

IMAGE_SIZE = 224
CROP_PADDING = 32
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
OFFICIAL = "official"
MNAS = "mnas"
PREPROCESSINGS = (OFFICIAL, MNAS)
RESIZE_METHODS = ("bicubic", "bilinear")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What to evaluate on and how images are prepared.

    Attributes:
      dataset: a tensorflow-datasets name or ``folder:<path>``.
      data_dir, manual_dir, download: as for ``mnas.train.data.DataConfig``.
      split: the split to score (``validation`` for ImageNet).
      image_size: model input side.
      crop_padding: the official centre crop keeps
        ``image_size / (image_size + crop_padding)`` of the shorter side.
      resize_method: ``bicubic`` or ``bilinear``.
      preprocessing: ``official`` (ImageNet mean/std) or ``mnas``
        (pixels / 127.5 - 1), whatever the model was trained with.
      batch_size: images per forward pass.
      max_examples: score only the first N images (None: all).
    """

    dataset: str
    data_dir: str | None = None
    manual_dir: str | None = None
    download: bool = False
    split: str = "validation"
    image_size: int = IMAGE_SIZE
    crop_padding: int = CROP_PADDING
    resize_method: str = "bicubic"
    preprocessing: str = OFFICIAL
    batch_size: int = 64
    max_examples: int | None = None

    def __post_init__(self) -> None:
        if not self.dataset.strip():
            raise DataError("dataset must not be empty")
        if self.resize_method not in RESIZE_METHODS:
            raise DataError(
                f"resize_method must be one of {RESIZE_METHODS}, "
                f"got {self.resize_method!r}"
            )
        if self.preprocessing not in PREPROCESSINGS:
            raise DataError(
                f"preprocessing must be one of {PREPROCESSINGS}, "
                f"got {self.preprocessing!r}"
            )
        if self.image_size < 8 or self.crop_padding < 0 or self.batch_size < 1:
            raise DataError(
                "image_size must be >= 8, crop_padding >= 0 and batch_size >= 1"
            )
        if self.max_examples is not None and self.max_examples < 1:
            raise DataError(f"max_examples must be >= 1, got {self.max_examples}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Accuracy over ``num_examples`` images; ``predictions`` are top-1 classes."""

    top1: float
    top5: float
    num_examples: int
    seconds: float
    predictions: np.ndarray = dataclasses.field(repr=False)
    labels: np.ndarray = dataclasses.field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "num_examples": self.num_examples,
            "seconds": round(self.seconds, 3),
        }

    def agreement(self, other: EvalResult) -> float:
        """Share of images on which both give the same top-1 class."""
        if self.num_examples != other.num_examples:
            raise ValueError("results cover different numbers of images")
        return float(np.mean(self.predictions == other.predictions))


@dataclasses.dataclass(frozen=True)
class EvalSource:
    """Encoded images and labels of one split."""

    description: str
    class_names: tuple[str, ...]
    num_examples: int
    examples: tf.data.Dataset  # (encoded bytes, int64 label)


# --------------------------------------------------------------------------
# Preprocessing.


def center_crop_window(
    height: int, width: int, image_size: int = IMAGE_SIZE, padding: int = CROP_PADDING
) -> tuple[int, int, int]:
    """``(offset_height, offset_width, side)`` of the official centre crop."""
    side = int(image_size / (image_size + padding) * min(height, width))
    return ((height - side + 1) // 2, (width - side + 1) // 2, side)


def normalize(images: tf.Tensor, preprocessing: str) -> tf.Tensor:
    """[0, 255] float pixels -> the model's input range."""
    images = tf.cast(images, tf.float32)
    if preprocessing == OFFICIAL:
        return (images - tf.constant(MEAN_RGB)) / tf.constant(STDDEV_RGB)
    if preprocessing == MNAS:
        return images / 127.5 - 1.0
    raise ValueError(f"preprocessing must be one of {PREPROCESSINGS}")


def resize(image: tf.Tensor, size: int, method: str) -> tf.Tensor:
    """TF1's ``resize_bicubic`` / ``resize_bilinear`` (no half-pixel centres)."""
    op = tf.raw_ops.ResizeBicubic if method == "bicubic" else tf.raw_ops.ResizeBilinear
    return op(
        images=image[tf.newaxis],
        size=[size, size],
        align_corners=False,
        half_pixel_centers=False,
    )[0]


def decode_and_center_crop(
    encoded: tf.Tensor,
    image_size: int = IMAGE_SIZE,
    padding: int = CROP_PADDING,
    resize_method: str = "bicubic",
) -> tf.Tensor:
    """The official eval crop of encoded image bytes; float [0, 255] output."""

    def window(shape: tf.Tensor) -> tf.Tensor:
        height, width = shape[0], shape[1]
        side = tf.cast(
            image_size
            / (image_size + padding)
            * tf.cast(tf.minimum(height, width), tf.float32),
            tf.int32,
        )
        return tf.stack([(height - side + 1) // 2, (width - side + 1) // 2, side, side])

    def jpeg() -> tf.Tensor:
        crop = window(tf.image.extract_jpeg_shape(encoded))
        return tf.image.decode_and_crop_jpeg(encoded, crop, channels=3)

    def other() -> tf.Tensor:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        crop = window(tf.shape(image))
        return tf.image.crop_to_bounding_box(image, crop[0], crop[1], crop[2], crop[3])

    image = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    image.set_shape([None, None, 3])
    image = resize(image, image_size, resize_method)
    return tf.reshape(image, [image_size, image_size, 3])


def preprocess_for_eval(encoded: tf.Tensor, config: EvalConfig) -> tf.Tensor:
    image = decode_and_center_crop(
        encoded, config.image_size, config.crop_padding, config.resize_method
    )
    return normalize(image, config.preprocessing)


# --------------------------------------------------------------------------
# Sources.


def open_source(config: EvalConfig) -> EvalSource:
    """The configured split as encoded images; no decoding yet."""
    if config.dataset.startswith(FOLDER_PREFIX):
        return _folder_source(config.dataset[len(FOLDER_PREFIX) :].strip(), config)
    return _tfds_source(config)


def _folder_source(root: str, config: EvalConfig) -> EvalSource:
    path = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(path):
        raise DataError(f"image folder '{root}' does not exist or is not a folder")
    split_dir = os.path.join(path, config.split)
    base = split_dir if os.path.isdir(split_dir) else path
    classes = sorted(
        d
        for d in os.listdir(base)
        if os.path.isdir(os.path.join(base, d)) and not d.startswith(".")
    )
    files, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(os.listdir(os.path.join(base, name))):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(base, name, file))
                labels.append(label)
    if not files:
        raise DataError(
            f"image folder '{root}' has no images: expected <folder>/<class>/<image> "
            f"or <folder>/{config.split}/<class>/<image>"
        )
    if config.max_examples is not None:
        files, labels = files[: config.max_examples], labels[: config.max_examples]
    ds = tf.data.Dataset.from_tensor_slices((files, np.asarray(labels, np.int64))).map(
        lambda f, y: (tf.io.read_file(f), y)
    )
    return EvalSource(f"image folder '{base}'", tuple(classes), len(files), ds)


def _tfds_source(config: EvalConfig) -> EvalSource:
    import tensorflow_datasets as tfds

    name = config.dataset
    try:
        builder = tfds.builder(name, data_dir=config.data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"unknown dataset '{name}': not '{FOLDER_PREFIX}<path>' and not a "
            "tensorflow-datasets name"
        ) from None
    if not builder.is_prepared():
        if not (config.download or config.manual_dir):
            raise DataError(
                f"dataset '{name}' is not prepared in data_dir "
                f"'{builder.data_dir_root}': prepare it with `tfds build {name} "
                f"--data_dir=... --manual_dir=...` (ImageNet needs the archives "
                "downloaded by hand), or pass manual_dir / download"
            )
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=config.manual_dir, try_download_gcs=config.download
            )
        )
    info = builder.info
    if config.split not in info.splits:
        raise DataError(
            f"dataset '{name}' has no split '{config.split}' "
            f"(splits: {sorted(info.splits)})"
        )
    image_key, label_key = info.supervised_keys
    total = info.splits[config.split].num_examples
    count = total if config.max_examples is None else min(total, config.max_examples)
    split = config.split if count == total else f"{config.split}[:{count}]"
    ds = builder.as_dataset(
        split=split,
        shuffle_files=False,
        decoders={image_key: tfds.decode.SkipDecoding()},
    ).map(lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int64)))
    names = info.features[label_key].names
    return EvalSource(
        f"tfds '{name}' split '{split}' in '{builder.data_dir_root}'",
        tuple(names),
        count,
        ds,
    )


def batches(source: EvalSource, config: EvalConfig) -> tf.data.Dataset:
    """Preprocessed ``(images, labels)`` batches in a fixed order."""
    ds = source.examples.map(
        lambda encoded, label: (preprocess_for_eval(encoded, config), label),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------
# Scoring.

Progress = Callable[[int, int | None, float], None]


def score(
    predict: Callable[[np.ndarray], np.ndarray],
    data: Iterable[tuple[Any, Any]],
    total: int | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Top-1 and top-5 of ``predict`` (images -> class scores) over ``data``."""
    start = time.perf_counter()
    predictions, labels, top5_hits = [], [], 0
    for images, batch_labels in data:
        scores = np.asarray(predict(np.asarray(images)))
        batch_labels = np.asarray(batch_labels).astype(np.int64)
        k = min(5, scores.shape[-1])
        top = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
        predictions.append(top[:, 0])
        labels.append(batch_labels)
        top5_hits += int(np.sum(np.any(top == batch_labels[:, None], axis=-1)))
        if progress is not None:
            done = sum(len(p) for p in predictions)
            correct = sum(int(np.sum(p == y)) for p, y in zip(predictions, labels))
            progress(done, total, correct / done)
    if not predictions:
        raise DataError("no images to evaluate")
    pred = np.concatenate(predictions)
    true = np.concatenate(labels)
    return EvalResult(
        top1=float(np.mean(pred == true)),
        top5=top5_hits / len(true),
        num_examples=len(true),
        seconds=time.perf_counter() - start,
        predictions=pred,
        labels=true,
    )


def keras_predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    """Inference-mode forward pass, traced once."""
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda images: forward(tf.constant(images, tf.float32)).numpy()


def tflite_predictor(flatbuffer: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """Runs a batch-1 ``.tflite`` image by image with the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()

    def predict(images: np.ndarray) -> np.ndarray:
        rows = []
        for image in images:
            value = image[np.newaxis].astype(np.float32)
            if inp["dtype"] != np.float32:  # int8 I/O: quantize the input.
                scale, zero = inp["quantization"]
                value = np.clip(np.round(value / scale + zero), -128, 127)
                value = value.astype(inp["dtype"])
            interpreter.set_tensor(inp["index"], value)
            interpreter.invoke()
            row = interpreter.get_tensor(out["index"])[0].astype(np.float32)
            if out["dtype"] != np.float32:
                scale, zero = out["quantization"]
                row = (row - zero) * scale
            rows.append(row)
        return np.stack(rows)

    return predict


def evaluate(
    predict: Callable[[np.ndarray], np.ndarray],
    config: EvalConfig,
    progress: Progress | None = None,
) -> tuple[EvalResult, EvalSource]:
    """Scores ``predict`` on the configured split."""
    source = open_source(config)
    data = batches(source, config).as_numpy_iterator()
    return score(predict, data, source.num_examples, progress), source


def array_batches(
    images: np.ndarray, labels: np.ndarray, batch_size: int = 64
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """In-memory ``(images, labels)`` in fixed-size batches (for proxy data)."""
    for begin in range(0, len(labels), batch_size):
        yield images[begin : begin + batch_size], labels[begin : begin + batch_size]
