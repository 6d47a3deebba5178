"""What the proxy task trains on: the config and its errors alone.

Kept apart from the input pipeline so that reading it (a binary checking its
flags, a search reading its ``config.json``) does not import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mnas.search_space import check_bool, check_int, check_real, check_text

DIGITS = "digits"
CLUTTERED_DIGITS = "cluttered_digits"
EMBEDDED_DATASETS = (DIGITS, CLUTTERED_DIGITS)
FOLDER_PREFIX = "folder:"
PIXEL_RANGE = (-1.0, 1.0)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # What tfds' ImageFolder reads.


# Bounds of DataConfig (mnas.flags.data checks its flags against the same
# numbers). Images are held in memory at the proxy resolution, so it stays far
# below ArchSpec's largest.
MIN_PROXY_RESOLUTION = 8
MAX_PROXY_RESOLUTION = 1024
MAX_BATCH_SIZE = 65_536
MAX_EXAMPLES = 2**31
MAX_SEED = 2**32 - 1  # NumPy's legacy seeding takes 32 bits
MAX_PATH_LENGTH = 4096


class DataError(ValueError):
    """Bad data input; every error of this module derives from it."""


class UnknownDatasetError(DataError):
    """The dataset name is neither the embedded default, a folder, nor in tfds."""


class DatasetNotPreparedError(DataError):
    """A tfds dataset is not in ``data_dir`` and may not (or could not) be built."""


class ImageFolderError(DataError):
    """An image folder is missing, empty or holds files that are not images."""


@dataclass(frozen=True)
class DataConfig:
    """What the proxy task trains on and how examples are split and batched.

    Attributes:
      dataset: ``'digits'``, ``'cluttered_digits'``, ``'folder:<path>'`` or a
        tensorflow-datasets name.
      data_dir: tfds data directory (tfds' default when None).
      manual_dir: tfds manual directory, for datasets downloaded by hand.
      download: let tfds download and prepare a missing dataset (needs network).
      resolution: proxy image side in pixels; small so the search stays fast.
      validation_fraction: share of the train split held out for the reward.
      batch_size: training and evaluation batch size. On this CPU a step's
        cost is mostly fixed overhead up to about 64 images of 32 px, so 64
        buys twice the examples of 32 per step at little extra cost
        (docs/proxy.md).
      seed: seeds the split, the shuffling and the augmentation.
      max_train_examples: cap on training examples (None: all that remain).
      max_eval_examples: cap on held-out validation examples.
      augment: random pad-and-crop of training images. Off by default: over a
        few hundred steps it only slows fitting (the digits fill their frame,
        so a shift cuts strokes off), and the proxy ranks candidates rather
        than trains them to generalise.
      random_flip: random horizontal flips; off by default because it is
        wrong for digits and text, turn it on for natural images.
    """

    dataset: str = DIGITS
    data_dir: str | None = None
    manual_dir: str | None = None
    download: bool = False
    resolution: int = 32
    validation_fraction: float = 0.2
    batch_size: int = 64
    seed: int = 0
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    augment: bool = False
    random_flip: bool = False

    def __post_init__(self) -> None:
        def check(checked: Callable, name: str, *args, **kwargs) -> None:
            value = checked(name, getattr(self, name), *args, error=DataError, **kwargs)
            object.__setattr__(self, name, value)

        check(check_text, "dataset", MAX_PATH_LENGTH)
        for name in ("data_dir", "manual_dir"):
            check(check_text, name, MAX_PATH_LENGTH, allow_none=True)
        if not self.dataset.strip():
            raise DataError("dataset must not be empty")
        if self.dataset.startswith(FOLDER_PREFIX) and not self.image_folder:
            raise DataError(
                f"dataset '{FOLDER_PREFIX}' must be followed by a directory path"
            )
        check(check_int, "resolution", MIN_PROXY_RESOLUTION, MAX_PROXY_RESOLUTION)
        check(
            check_real, "validation_fraction", 0.0, 1.0, low_open=True, high_open=True
        )
        check(check_int, "batch_size", 1, MAX_BATCH_SIZE)
        check(check_int, "seed", 0, MAX_SEED)
        for name in ("max_train_examples", "max_eval_examples"):
            check(check_int, name, 1, MAX_EXAMPLES, allow_none=True)
        for name in ("download", "augment", "random_flip"):
            check(check_bool, name)

    @property
    def image_folder(self) -> str | None:
        """The folder path of a ``folder:`` dataset, else None."""
        if not self.dataset.startswith(FOLDER_PREFIX):
            return None
        return self.dataset[len(FOLDER_PREFIX) :].strip()
