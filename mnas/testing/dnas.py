"""A tiny search space, its synthetic latency table and small proxy data for
the supernet tests: DNAS and shared-weight evaluation (the full MnasNet
supernet takes minutes to trace)."""

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
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig

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


def randomize_supernet(net, rng) -> None:
    """Non-trivial batch-norm statistics and SE biases, so that a weight copied
    to the wrong place or a missing mask shows in the outputs."""
    import numpy as np

    for bn in net.batch_norms():
        channels = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, channels).astype(np.float32))
        bn.beta.assign(rng.normal(0, 0.3, channels).astype(np.float32))
        bn.moving_mean.assign(rng.normal(0, 0.3, channels).astype(np.float32))
        bn.moving_variance.assign(rng.uniform(0.5, 2, channels).astype(np.float32))
    for variable in net.weight_variables:
        if variable.path.endswith("_bias"):  # SE biases
            variable.assign(rng.normal(0, 0.3, variable.shape).astype(np.float32))


def set_one_hot_theta(net, actions, scale: float = 50.0) -> None:
    """θ that puts all but ~e^-50 of each decision's weight on ``actions``."""
    import numpy as np

    for theta, action in zip(net.theta, actions):
        values = np.zeros(theta.shape, np.float32)
        values[action] = scale
        theta.assign(values)


def assert_supernet_computes_plain(net, spec, images, num_classes: int = 10) -> None:
    """The supernet (θ set one-hot on ``spec``) and the plain build of ``spec``
    with the supernet's weights copied give the same logits."""
    import numpy as np

    from mnas.model.builder import build_model

    plain = build_model(spec, images.shape[1:], num_classes, classifier_activation=None)
    net.copy_weights_to(plain, spec)
    np.testing.assert_allclose(
        net(images, training=False).numpy(),
        plain(images, training=False).numpy(),
        rtol=1e-4,
        atol=1e-4,
    )
