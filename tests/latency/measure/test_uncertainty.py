"""Uncertainty and RatioEstimate: validation, half-widths, JSON, text."""

from __future__ import annotations

import json

import pytest

from mnas.latency.measure.uncertainty import RatioEstimate, Uncertainty, format_ms


def uncertainty(**changes) -> Uncertainty:
    fields = dict(
        estimate_ms=10.0,
        low_ms=9.0,
        high_ms=11.5,
        confidence=0.95,
        rounds=3,
        round_ms=(9.5, 10.0, 10.5),
        spread=0.1,
        target=0.02,
        stable=False,
        reasons=("only 3 rounds of min_rounds 5 (time cap 60 s reached)",),
    )
    return Uncertainty(**{**fields, **changes})


def test_half_width_is_relative_to_the_estimate():
    assert uncertainty().half_width == pytest.approx(0.125)
    ratio = RatioEstimate("ref", 5.0, 2.0, 1.8, 2.4, 3)
    assert ratio.half_width == pytest.approx(0.15)


def test_validation_messages():
    with pytest.raises(
        ValueError, match=r"interval \[10.5, 11.5\] must contain the estimate 10.0"
    ):
        uncertainty(low_ms=10.5)
    with pytest.raises(
        ValueError, match=r"rounds \(4\) must be >= 1 and match round_ms \(3 values\)"
    ):
        uncertainty(rounds=4)
    with pytest.raises(ValueError, match="a stable result cannot carry reasons"):
        uncertainty(stable=True)
    with pytest.raises(ValueError, match="an unstable result must say why"):
        uncertainty(reasons=())


def test_json_round_trip_without_conditions_or_ratio():
    value = uncertainty(target=None)
    assert Uncertainty.from_dict(json.loads(json.dumps(value.to_dict()))) == value


def test_describe_without_conditions():
    assert uncertainty().describe() == (
        "10.00 ms ±12.5% (95% CI 9.00-11.50, 3 rounds, spread 10%) UNSTABLE: "
        "only 3 rounds of min_rounds 5 (time cap 60 s reached)"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(123.456, "123.5"), (9.534, "9.53"), (0.01973, "0.0197"), (0.5, "0.5")],
)
def test_format_ms(value, text):
    assert format_ms(value) == text
