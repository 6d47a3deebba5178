"""Core functions of the shared-evaluation benchmarks (never the full runs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def separability():
    name = "shared_separability"
    spec = importlib.util.spec_from_file_location(name, _BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.separability


def test_features_that_are_the_class_are_fully_separable(separability):
    labels = np.array([0, 0, 1, 1, 2, 2])
    features = np.eye(3)[labels] * 5.0
    assert separability(features, labels) == pytest.approx(1.0)


def test_features_with_equal_class_means_carry_no_class(separability):
    labels = np.array([0, 0, 1, 1])
    features = np.array([[1.0, 3.0], [2.0, 5.0], [2.0, 5.0], [1.0, 3.0]])
    assert separability(features, labels) == pytest.approx(0.0)


def test_between_class_share_of_the_variance(separability):
    # Class means 0 and 2 around 1: between = 4 * 1; within = 4 * 0.25.
    labels = np.array([0, 0, 1, 1])
    features = np.array([[-0.5], [0.5], [1.5], [2.5]])
    assert separability(features, labels) == pytest.approx(4.0 / 5.0)


def test_maps_are_pooled_over_space_first(separability):
    labels = np.array([0, 1])
    maps = np.zeros((2, 2, 2, 1))
    maps[0, 0, 0, 0] = 4.0  # mean 1 for the first image, 0 for the second
    assert separability(maps, labels) == pytest.approx(1.0)
