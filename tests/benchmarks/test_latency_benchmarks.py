"""Core functions of the latency benchmarks (never the full runs)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def paper(load_benchmark):
    return load_benchmark("latency_paper_table")


@pytest.fixture(scope="module")
def throughput(load_benchmark):
    return load_benchmark("measure_throughput")


# -- latency_paper_table -------------------------------------------------------


def test_rank_shares_ties(paper):
    assert paper.rank([10.0, 30.0, 20.0, 20.0]) == [1.0, 4.0, 2.5, 2.5]


def test_spearman(paper):
    assert paper.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert paper.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # One swapped pair out of four: 1 - 6 * 2 / (4 * 15) = 0.8.
    assert paper.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="equal length >= 2"):
        paper.spearman([1.0], [2.0])


def test_time_interleaved_rotates_the_order(paper):
    calls = []

    def measure(path):
        calls.append(path)
        return float(len(calls))

    medians = paper.time_interleaved({"a": "A", "b": "B", "c": "C"}, 3, measure)
    assert calls == ["A", "B", "C", "B", "C", "A", "C", "A", "B"]
    assert medians == {"a": [1.0, 6.0, 8.0], "b": [2.0, 4.0, 9.0], "c": [3.0, 5.0, 7.0]}


def test_table_ratios_paper_figures_and_spearman(paper):
    timing = paper.ModelTiming
    timings = {
        "MobileNetV1": timing("MobileNetV1", (10.0, 12.0, 11.0)),
        "MobileNetV2 1.0": timing("MobileNetV2 1.0", (5.0, 6.0, 5.5)),
        "MnasNet-A1": timing("MnasNet-A1", (5.5, 6.0, 6.6)),
        "MnasNet-B1": timing("MnasNet-B1", (4.0, 4.0, 4.0), params=4_383_312),
    }
    assert "fastest ms" not in paper.make_table(timings)[0]
    timings = {
        name: paper.ModelTiming(
            name, t.round_medians, tuple(m / 2 for m in t.round_medians), t.params
        )
        for name, t in timings.items()
    }
    assert timings["MobileNetV1"].median == 11.0
    assert timings["MobileNetV1"].spread == (10.0, 12.0)
    ratios = paper.ratios_to(timings, "MobileNetV2 1.0")
    assert ratios["MobileNetV1"] == pytest.approx(2.0)  # 2.0, 2.0, 2.0
    assert ratios["MnasNet-A1"] == pytest.approx(1.1)  # 1.1, 1.0, 1.2
    assert timings["MobileNetV1"].fastest == 5.5
    assert paper.ratios_to(timings, "MobileNetV2 1.0", "round_mins") == ratios
    table, rhos = paper.make_table(timings)
    # V2 < A1 < V1 on host and on the Pixel 1.
    assert rhos == {"median": pytest.approx(1.0), "fastest": pytest.approx(1.0)}
    assert "fastest / MV2" in table
    b1 = next(line for line in table.splitlines() if line.startswith("MnasNet-B1"))
    assert b1.split()[-2:] == ["n/a", "n/a"]
    assert "4.38M" in b1
    v1 = next(line for line in table.splitlines() if line.startswith("MobileNetV1"))
    assert "113" in v1 and "1.507" in v1  # 113 / 75


def test_paper_figures_match_the_reference(paper):
    figures = paper.PAPER_PIXEL1_MS
    assert figures == {
        "MobileNetV1": 113.0,
        "MobileNetV2 1.0": 75.0,
        "MobileNetV2 1.4": 143.0,
        "NASNet-A mobile": 183.0,
        "MnasNet-A1": 78.0,
        "MnasNet-B1": None,
        "MnasNet-small": None,
    }


def test_paper_table_host_timing_of_tiny_files(paper, tmp_path):
    from mnas.latency.export import export_tflite
    from mnas.testing.latency_models import tiny_convnet

    paths = {}
    for width in (8, 32):
        path = tmp_path / f"w{width}.tflite"
        path.write_bytes(export_tflite(tiny_convnet(input_size=32, width=width)))
        paths[f"w{width}"] = str(path)
    measured = paper.time_interleaved(paths, 2, paper.host_measure(runs=3, cpus=None))
    assert [len(v) for v in measured.values()] == [2, 2]
    assert all(
        0 < fastest <= median for v in measured.values() for median, fastest in v
    )


# -- measure_throughput --------------------------------------------------------


def test_phase_timer_wraps_restores_and_skips_missing(throughput):
    class Owner:
        @staticmethod
        def work(x):
            return x + 1

    original = Owner.work
    timer = throughput.PhaseTimer()
    with timer.wrapping([(Owner, "work", "phase"), (Owner, "absent", "other")]):
        assert Owner.work(1) == 2
        assert Owner.work(2) == 3
    assert Owner.work is original
    assert not hasattr(Owner, "absent")
    taken = timer.take()
    assert set(taken) == {"phase"} and taken["phase"] >= 0
    assert timer.take() == {}


def test_converter_phases_exist_in_this_tensorflow(throughput):
    for owner, attr, _ in throughput.converter_phases():
        assert callable(getattr(owner, attr)), attr


def test_candidates_are_seeded(throughput):
    first = throughput.candidates(2, seed=3)
    again = throughput.candidates(2, seed=3)
    assert [s.name for s in first] == ["mnasnet-a1", "sample-3-0", "sample-3-1"]
    assert [s.block_strings for s in first] == [s.block_strings for s in again]


def test_mean_row(throughput):
    rows = [("a", 1, 2.0, "x"), ("b", 3, 4.0, "y")]
    assert throughput._mean_row(rows, "mean") == ("mean", 2, 3.0, "")


def test_direct_graphdef_has_the_builders_ops(throughput):
    """The Keras-free prototype mirrors the builder on every layer kind."""
    from mnas.latency.export import export_tflite
    from mnas.model.builder import build_model
    from mnas.search_space import parse_arch

    spec = parse_arch(
        "r1_k3_s11_e1_i32_o16_se0.25_conv,r1_k3_s22_e1_i16_o24_dsconv_poolskip,"
        "r2_k5_s22_e3_i24_o40_se0.25_poolskip,r2_k3_s11_e6_i40_o40"
    )
    direct, seconds = throughput.export_direct(spec, resolution=32)
    assert set(seconds) == {"graph", "convert"}
    library = export_tflite(build_model(spec, (32, 32, 3)))
    assert throughput.same_ops(direct, library)
    assert 0.9 < len(direct) / len(library) < 1.1


# -- latency_stability ----------------------------------------------------------


@pytest.fixture(scope="module")
def stability(load_benchmark):
    return load_benchmark("latency_stability")


def _adaptive(ms: float, stable: bool, ratio: float | None = None):
    import dataclasses

    from mnas.latency.measure.uncertainty import RatioEstimate, Uncertainty
    from mnas.latency.result import BackendFingerprint, LatencyResult

    fp = BackendFingerprint.create("fake", "x", "y", 1, "v")
    u = Uncertainty(
        estimate_ms=ms,
        low_ms=ms * 0.99,
        high_ms=ms * 1.01,
        confidence=0.95,
        rounds=5,
        round_ms=(ms,) * 5,
        spread=0.0,
        target=0.02,
        stable=stable,
        reasons=() if stable else ("noisy",),
        ratio=None
        if ratio is None
        else RatioEstimate("ref", 5.0, ratio, ratio, ratio, 5),
    )
    return dataclasses.replace(
        LatencyResult.from_samples([ms], fp), median_ms=ms, uncertainty=u
    )


def test_stability_judge_counts_agreement_and_flagging(stability):
    pairs = [
        # 2% apart: agrees.
        stability.Pair("a", _adaptive(10.0, True, 1.5), _adaptive(10.2, True, 1.5)),
        # 4% apart: disagrees, but within the 5% flag threshold.
        stability.Pair("b", _adaptive(10.0, True, 1.5), _adaptive(10.4, True, 1.52)),
        # 20% apart: both flagged.
        stability.Pair("c", _adaptive(10.0, False, 1.5), _adaptive(12.2, False, 1.9)),
        # 20% apart: only one flagged.
        stability.Pair("d", _adaptive(10.0, True, 1.5), _adaptive(12.2, False, 1.5)),
    ]
    verdict = stability.judge(pairs, agree_within=0.03, flag_above=0.05)
    assert verdict.pairs == 4 and verdict.agree == 0.25
    assert verdict.ratio_agree == 0.75
    assert (verdict.far_apart, verdict.far_apart_both_flagged) == (2, 1)
    assert verdict.far_apart_one_flagged == 1 and verdict.flagged_results == 3
    assert not verdict.every_far_result_flagged
    text = stability.describe_verdict(verdict, 0.03, 0.05)
    assert "pairs within ±3%: 25% of 4 (ratios: 75%)" in text
    assert text.endswith("NOT all flagged")
    rows = stability.pair_rows(pairs[:1])
    assert rows == [
        (
            "a",
            "10.00 ±1.0% 5r stable",
            "10.20 ±1.0% 5r stable",
            "2.0%",
            "1.500 / 1.500",
            "0.0%",
        )
    ]
    with pytest.raises(ValueError, match="judge needs at least one pair"):
        stability.judge([])
