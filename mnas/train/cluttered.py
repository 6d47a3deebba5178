"""Cluttered digits: a harder proxy task generated from scikit-learn's digits.

The embedded digits saturate once the proxy trainer works (most candidates
score 0.97-0.99 on 359 held-out images, one image being 0.0028), so they
cannot tell good architectures from slightly worse ones. This set keeps the
no-download property (it is generated, deterministically, from the 1,797
digits that ship with scikit-learn) but asks for more of a network: each image
is a 32x32 grey canvas holding one digit at a random position, scale, rotation
and contrast, several distractor fragments cut from *other* digits, and pixel
noise. The label is the whole digit's class.

Every source digit is rendered ``variants`` times; ``groups`` gives each
image's source digit so that a held-out split can keep all renderings of one
digit on the same side (``mnas.train.data`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANVAS = 32
DEFAULT_VARIANTS = 3
DEFAULT_SEED = 0

_SOURCE_SIDE = 8  # scikit-learn digits are 8x8, values 0..16.
_SCALE = (1.5, 2.75)  # Digit height 12-22 px on the 32 px canvas.
_ROTATION_DEG = 30.0
_CONTRAST = (0.55, 1.0)
_FRAGMENTS = (2, 4)  # Distractors per image, inclusive.
_FRAGMENT_SIDE = (3, 4)  # Native pixels cut from another digit, inclusive.
_FRAGMENT_SCALE = (1.0, 2.0)  # Smaller than the digit: it stays the main object.
_NOISE_STD = 0.08  # Of full scale.


@dataclass(frozen=True, eq=False)
class ClutteredDigits:
    """Generated images (``uint8``, N x 32 x 32), labels and source digits."""

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    class_names: tuple[str, ...]


def make_cluttered_digits(
    variants: int = DEFAULT_VARIANTS, seed: int = DEFAULT_SEED
) -> ClutteredDigits:
    """Renders every scikit-learn digit ``variants`` times; same seed, same bytes.

    Images are ordered variant-major (all digits once, then again...), so a
    prefix of the set still covers all source digits.
    """
    if variants < 1:
        raise ValueError(f"variants must be at least 1, got {variants}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    sources = digits.images.astype(np.float32) / 16.0  # 0..1.
    n_source = len(sources)
    rng = np.random.default_rng(seed)
    groups = np.tile(np.arange(n_source), variants)
    n = len(groups)

    scale = rng.uniform(*_SCALE, size=n)
    digit = _render(
        sources[groups],
        scale=scale,
        angle=np.deg2rad(rng.uniform(-_ROTATION_DEG, _ROTATION_DEG, size=n)),
        centre=_centres(rng, half_extent=0.4 * _SOURCE_SIDE * scale),
    )
    canvas = digit * rng.uniform(*_CONTRAST, size=(n, 1, 1)).astype(np.float32)

    counts = rng.integers(_FRAGMENTS[0], _FRAGMENTS[1] + 1, size=n)
    for slot in range(_FRAGMENTS[1]):
        active = counts > slot
        # Another digit than the image's own source (its class may repeat).
        other = (groups + rng.integers(1, n_source, size=n)) % n_source
        fragment = _cut_fragments(sources[other], rng)
        frag_scale = rng.uniform(*_FRAGMENT_SCALE, size=n)
        rendered = _render(
            fragment,
            scale=frag_scale,
            angle=rng.uniform(-np.pi, np.pi, size=n),
            centre=rng.uniform(0, CANVAS, size=(n, 2)),
        )
        rendered *= rng.uniform(*_CONTRAST, size=(n, 1, 1)).astype(np.float32)
        np.maximum(canvas, rendered, out=canvas, where=active[:, None, None])

    canvas += _NOISE_STD * rng.standard_normal(size=canvas.shape, dtype=np.float32)
    images = np.round(np.clip(canvas, 0.0, 1.0) * 255.0).astype(np.uint8)
    return ClutteredDigits(
        images=images,
        labels=digits.target[groups].astype(np.int64),
        groups=groups,
        class_names=tuple(str(c) for c in digits.target_names),
    )


def _centres(rng: np.random.Generator, half_extent: np.ndarray) -> np.ndarray:
    """Digit centres (y, x) that keep the digit's body on the canvas."""
    low = half_extent
    high = CANVAS - half_extent
    return low[:, None] + rng.uniform(size=(len(low), 2)) * (high - low)[:, None]


def _cut_fragments(sources: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keeps one random square window of each source digit, zeroes the rest."""
    n = len(sources)
    side = rng.integers(_FRAGMENT_SIDE[0], _FRAGMENT_SIDE[1] + 1, size=n)
    top = rng.integers(0, _SOURCE_SIDE - side + 1)
    left = rng.integers(0, _SOURCE_SIDE - side + 1)
    rows = np.arange(_SOURCE_SIDE)
    in_rows = (rows >= top[:, None]) & (rows < (top + side)[:, None])
    in_cols = (rows >= left[:, None]) & (rows < (left + side)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    return np.where(mask, sources, 0.0)


def _render(
    sources: np.ndarray, scale: np.ndarray, angle: np.ndarray, centre: np.ndarray
) -> np.ndarray:
    """Draws each 8x8 source onto a canvas: scaled, rotated about its centre
    and moved to ``centre`` (y, x, in pixels from the top-left corner);
    bilinear, black outside the source."""
    import keras  # TensorFlow's projective-transform kernel does the sampling.

    n = len(sources)
    offset = (CANVAS - _SOURCE_SIDE) // 2
    canvas = np.zeros((n, CANVAS, CANVAS, 1), np.float32)
    canvas[:, offset : offset + _SOURCE_SIDE, offset : offset + _SOURCE_SIDE, 0] = (
        sources
    )
    middle = offset + (_SOURCE_SIDE - 1) / 2  # The source's centre, in indices.
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    cy, cx = centre[:, 0] - 0.5, centre[:, 1] - 0.5  # Pixel centres sit at i.
    # Output pixel (x, y) -> input (x', y'): rotate by -angle, shrink by scale.
    transform = np.stack(
        [
            cos,
            sin,
            middle - cos * cx - sin * cy,
            -sin,
            cos,
            middle + sin * cx - cos * cy,
            np.zeros(n),
            np.zeros(n),
        ],
        axis=1,
    ).astype(np.float32)
    drawn = keras.ops.image.affine_transform(
        canvas, transform, interpolation="bilinear", fill_mode="constant"
    )
    return keras.ops.convert_to_numpy(drawn)[..., 0]
