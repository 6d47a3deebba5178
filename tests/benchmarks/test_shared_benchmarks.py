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


def _journal_stats():
    name = "shared_journal_stats"
    spec = importlib.util.spec_from_file_location(name, _BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_journal_windows_report_means_medians_and_distinct_architectures():
    def record(trial, phase, accuracy, reward, ms, blocks):
        return {
            "trial_id": trial,
            "phase": phase,
            "accuracy": accuracy,
            "reward": reward,
            "predicted_ms": ms,
            "block_strings": blocks,
        }

    shared = [
        record(0, "warmup", 0.1, 0.0, 9.0, ["a"]),
        record(1, "warmup", 0.3, 0.2, 7.0, ["b"]),
        record(2, "search", 0.5, 0.4, 8.0, ["a"]),
        record(3, "search", 0.9, 0.8, 6.0, ["a"]),
        record(4, "search", 0.7, 0.6, 5.0, ["c"]),
    ]
    rows = _journal_stats().per_window(shared, every=2)
    assert rows[2:] == [
        "| 0–1 | warmup | 0.200 | 0.100 | 8.00 | 2 |",
        "| 2–3 | search | 0.700 | 0.600 | 7.00 | 1 |",
        "| 4–4 | search | 0.700 | 0.600 | 5.00 | 1 |",
    ]


def test_journal_stats_refuses_a_missing_journal_in_one_line(tmp_path, capsys):
    assert _journal_stats().main(str(tmp_path / "trials.jsonl")) == 1
    err = capsys.readouterr().err
    assert err.startswith("shared_journal_stats: cannot read ")
    assert len(err.strip().splitlines()) == 1
