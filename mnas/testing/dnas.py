"""A tiny search space, its synthetic latency table and small proxy data for
the DNAS tests (the full MnasNet supernet takes minutes to trace)."""

from __future__ import annotations

import functools

from mnas.search_space.space import FactorizedSearchSpace, SkeletonBlock

# Block widths {16, 16, 24} then {24, 24, 32}: consecutive blocks can share a
# width, which exercises the supernet's equal-width skip handling.
TINY_SPACE = FactorizedSearchSpace(
    name="tiny",
    version=1,
    skeleton=(SkeletonBlock(1, 16, 1, 1), SkeletonBlock(6, 24, 2, 2)),
    head_filters=32,
    resolution=64,
)


@functools.cache
def tiny_latency(sharing: str = "block"):
    """(ExpectedLatency, LatencyPredictor) over a synthetic table (10 classes)."""
    from mnas.latency.lut.expected import ExpectedLatency
    from mnas.latency.lut.predictor import LatencyPredictor
    from mnas.testing.latency_models import synthetic_table

    predictor = LatencyPredictor(synthetic_table(TINY_SPACE, num_classes=10))
    return ExpectedLatency(predictor, TINY_SPACE, sharing), predictor


@functools.cache
def small_digits(max_train_examples: int = 300):
    from mnas.train.data import DataConfig, load_proxy_data

    return load_proxy_data(
        DataConfig(max_train_examples=max_train_examples, max_eval_examples=200)
    )


# One block of up to two layers: the cheapest supernet that still has every
# decision kind, for tests that construct whole searches.
MICRO_SPACE = FactorizedSearchSpace(
    name="micro",
    version=1,
    skeleton=(SkeletonBlock(1, 16, 1, 2),),
    head_filters=32,
    resolution=64,
)


@functools.cache
def micro_latency(sharing: str = "block"):
    from mnas.latency.lut.expected import ExpectedLatency
    from mnas.latency.lut.predictor import LatencyPredictor
    from mnas.testing.latency_models import synthetic_table

    predictor = LatencyPredictor(synthetic_table(MICRO_SPACE, num_classes=10))
    return ExpectedLatency(predictor, MICRO_SPACE, sharing), predictor
