"""Cluttered digits: deterministic, documented size and classes, a real digit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mnas.train import cluttered
from mnas.train.cluttered import make_cluttered_digits

DIGITS_TOTAL = 1797


@pytest.fixture(scope="module")
def generated() -> cluttered.ClutteredDigits:
    return make_cluttered_digits()


def test_default_set_has_the_documented_size_and_classes(generated):
    assert generated.images.shape == (3 * DIGITS_TOTAL, 32, 32)
    assert generated.images.dtype == np.uint8
    assert generated.class_names == tuple(str(c) for c in range(10))
    assert np.bincount(generated.groups).tolist() == [3] * DIGITS_TOTAL
    target = load_digits().target
    np.testing.assert_array_equal(generated.labels, target[generated.groups])


def test_same_seed_gives_identical_arrays_and_another_seed_does_not(generated):
    again = make_cluttered_digits()
    np.testing.assert_array_equal(again.images, generated.images)
    np.testing.assert_array_equal(again.labels, generated.labels)
    other = make_cluttered_digits(seed=1)
    assert np.mean(other.images != generated.images) > 0.5


def test_variants_render_the_same_digit_differently(generated):
    first = generated.images[:DIGITS_TOTAL]
    second = generated.images[DIGITS_TOTAL : 2 * DIGITS_TOTAL]
    np.testing.assert_array_equal(generated.groups[:DIGITS_TOTAL], np.arange(1797))
    np.testing.assert_array_equal(
        generated.groups[DIGITS_TOTAL : 2 * DIGITS_TOTAL], np.arange(1797)
    )
    assert np.mean(np.any(first != second, axis=(1, 2))) == 1.0


def test_the_digit_is_drawn_where_its_pixels_were():
    """Without rotation, at scale 1, centred: the source digit comes back."""
    source = load_digits().images[:4].astype(np.float32) / 16.0
    drawn = cluttered._render(
        source,
        scale=np.ones(4),
        angle=np.zeros(4),
        centre=np.full((4, 2), 16.0),
    )
    np.testing.assert_allclose(drawn[:, 12:20, 12:20], source, atol=1e-5)
    assert np.abs(drawn).sum() == pytest.approx(source.sum(), rel=1e-5)


def test_doubling_the_scale_quadruples_the_ink():
    source = load_digits().images[:8].astype(np.float32) / 16.0
    args = {"angle": np.zeros(8), "centre": np.full((8, 2), 16.0)}
    once = cluttered._render(source, scale=np.ones(8), **args)
    twice = cluttered._render(source, scale=np.full(8, 2.0), **args)
    ratio = twice.sum(axis=(1, 2)) / once.sum(axis=(1, 2))
    np.testing.assert_allclose(ratio, 4.0, rtol=0.1)


def test_bad_variants():
    with pytest.raises(ValueError) as err:
        make_cluttered_digits(variants=0)
    assert str(err.value) == "variants must be at least 1, got 0"
