"""Core functions of the shared-evaluation benchmarks (never the full runs)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def separability(load_benchmark):
    return load_benchmark("shared_separability").separability


@pytest.fixture(scope="module")
def journal_stats(load_benchmark):
    return load_benchmark("shared_journal_stats")


@pytest.fixture(scope="module")
def search_vs_random(load_benchmark):
    return load_benchmark("search_vs_random")


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


def test_journal_windows_report_means_medians_and_distinct_architectures(
    journal_stats,
):
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
    rows = journal_stats.per_window(shared, every=2)
    assert rows[2:] == [
        "| 0–1 | warmup | 0.200 | 0.100 | 8.00 | 2 |",
        "| 2–3 | search | 0.700 | 0.600 | 7.00 | 1 |",
        "| 4–4 | search | 0.700 | 0.600 | 5.00 | 1 |",
    ]


def test_journal_stats_refuses_a_missing_journal_in_one_line(
    journal_stats, tmp_path, capsys
):
    assert journal_stats.main(str(tmp_path / "trials.jsonl")) == 1
    err = capsys.readouterr().err
    assert err.startswith("shared_journal_stats: cannot read ")
    assert len(err.strip().splitlines()) == 1


def test_retimed_latencies_replace_each_units_own_and_keep_them(search_vs_random):
    module = search_vs_random
    units = {
        "reinforce-seed0": {
            "group": "reinforce",
            "finalists": [
                {"accuracy": 0.9, "measured_ms": 6.0},
                {"accuracy": 0.8, "measured_ms": 5.0},
            ],
        },
        "mobilenet-v2-1": {
            "group": "presets",
            "finalists": [{"accuracy": 0.95, "measured_ms": 7.0}],
        },
    }
    result = module.with_retimed(
        units, {"reinforce-seed0": [5.5, 4.5], "mobilenet-v2-1": [7.5]}
    )
    assert [
        (f["measured_ms"], f["search_measured_ms"])
        for f in result["reinforce-seed0"]["finalists"]
    ] == [(5.5, 6.0), (4.5, 5.0)]
    assert result["mobilenet-v2-1"]["finalists"][0]["measured_ms"] == 7.5
    assert units["mobilenet-v2-1"]["finalists"][0]["measured_ms"] == 7.0  # a copy
    with pytest.raises(ValueError, match="does not cover mobilenet-v2-1"):
        module.with_retimed(units, {"reinforce-seed0": [5.5, 4.5]})


def test_hypervolume_counts_only_the_front_inside_the_reference(search_vs_random):
    module = search_vs_random
    # (2 ms, 0.5) and (4 ms, 0.9) form the front; (5 ms, 0.6) is dominated,
    # (12 ms, 1.0) lies beyond the 10 ms reference.
    points = [(5.0, 0.6), (2.0, 0.5), (4.0, 0.9), (12.0, 1.0)]
    assert module.pareto_front(points) == [(2.0, 0.5), (4.0, 0.9), (12.0, 1.0)]
    assert module.hypervolume(points, 10.0) == pytest.approx(8 * 0.5 + 6 * 0.4)
