"""Differentiable expected latency equals the predictor where it must.

One-hot probabilities give exactly ``predict`` of the decoded architecture;
any other distribution gives the probability-weighted mean of ``predict``
over every action vector (checked by enumerating a tiny space).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mnas.latency.lut.builder import new_table_header
from mnas.latency.lut.expected import ExpectedLatency
from mnas.latency.lut.predictor import LatencyPredictor
from mnas.latency.lut.table import (
    Calibration,
    LookupTable,
    LookupTableError,
    MissingEntryError,
)
from mnas.search_space import MNASNET_SPACE
from mnas.search_space.space import DEFAULT_CONV_OPS
from mnas.testing.latency_models import synthetic_table
from mnas.testing.lut import FixedBackend, tiny_space

SHARINGS = ("block", "layer")


@pytest.fixture(scope="module")
def mnas_table():
    table = synthetic_table(MNASNET_SPACE)
    table.set_calibration(Calibration(1.08, 0.3))
    return table


@pytest.fixture(scope="module")
def mnas_expected(mnas_table):
    return {s: ExpectedLatency(mnas_table, MNASNET_SPACE, s) for s in SHARINGS}


def _random_actions(space, sharing, rng):
    return [int(rng.integers(d.num_choices)) for d in space.decisions_for(sharing)]


@pytest.mark.parametrize("sharing", SHARINGS)
def test_one_hot_equals_the_prediction_of_the_decoded_arch(
    mnas_table, mnas_expected, sharing
):
    expected = mnas_expected[sharing]
    predictor = LatencyPredictor(mnas_table)
    rng = np.random.default_rng(11)
    for _ in range(20):
        actions = _random_actions(MNASNET_SPACE, sharing, rng)
        spec = MNASNET_SPACE.decode_for(sharing, actions)
        value = float(expected(expected.one_hot(actions)))
        assert value == pytest.approx(predictor.predict(spec), rel=1e-4), actions
        raw = float(expected.raw(expected.one_hot(actions)))
        assert raw == pytest.approx(predictor.raw_ms(spec), rel=1e-4)


def _weighted_mean(space, sharing, probs, predictor):
    decisions = space.decisions_for(sharing)
    total = 0.0
    weight_sum = 0.0
    for actions in itertools.product(*(range(d.num_choices) for d in decisions)):
        weight = float(np.prod([probs[d.name][a] for d, a in zip(decisions, actions)]))
        total += weight * predictor.predict(space.decode_for(sharing, actions))
        weight_sum += weight
    assert weight_sum == pytest.approx(1.0)
    return total


@pytest.mark.parametrize(
    "sharing, space_overrides, num_vectors",
    [
        ("block", {"filter_multipliers": (1.0, 1.5)}, 1024),
        ("layer", {"filter_multipliers": (1.0, 1.5), "se_ratios": (0.0,)}, 4096),
        # The first block with ops of its own (mnasnet-mbconv's MBConv e1):
        # its op axis is shorter than the other block's.
        (
            "block",
            {
                "filter_multipliers": (1.0, 1.5),
                "first_block_conv_ops": DEFAULT_CONV_OPS[2:3],
            },
            512,
        ),
    ],
)
def test_expectation_is_the_weighted_mean_over_all_archs(
    sharing, space_overrides, num_vectors
):
    space = tiny_space(**space_overrides)
    decisions = space.decisions_for(sharing)
    assert int(np.prod([d.num_choices for d in decisions])) == num_vectors
    table = synthetic_table(space, num_classes=10)
    table.set_calibration(Calibration(1.2, 0.1))
    predictor = LatencyPredictor(table)
    expected = ExpectedLatency(predictor, space, sharing)
    uniform = {d.name: np.full(d.num_choices, 1.0 / d.num_choices) for d in decisions}
    rng = np.random.default_rng(3)
    skewed = {d.name: rng.dirichlet(np.ones(d.num_choices)) for d in decisions}
    for probs in (uniform, skewed):
        exact = _weighted_mean(space, sharing, probs, predictor)
        assert float(expected(probs)) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("sharing", SHARINGS)
def test_gradients_reach_every_decision(mnas_expected, sharing):
    import tensorflow as tf

    expected = mnas_expected[sharing]
    rng = np.random.default_rng(0)
    logits = {
        d.name: tf.Variable(rng.normal(size=d.num_choices).astype(np.float32))
        for d in MNASNET_SPACE.decisions_for(sharing)
    }
    with tf.GradientTape() as tape:
        value = expected({n: tf.nn.softmax(v) for n, v in logits.items()})
    grads = tape.gradient(value, logits)
    assert float(value) > 0
    for name, grad in grads.items():
        assert grad is not None, name
        assert float(tf.reduce_max(tf.abs(grad))) > 0, name


def test_decision_names_follow_the_sharing(mnas_expected):
    assert mnas_expected["block"].decision_names == tuple(
        d.name for d in MNASNET_SPACE.decisions()
    )
    assert mnas_expected["layer"].decision_names == tuple(
        d.name for d in MNASNET_SPACE.layerwise_decisions()
    )


def test_a_missing_decision_is_named(mnas_expected):
    expected = mnas_expected["block"]
    probs = expected.one_hot(MNASNET_SPACE.sample(0))
    del probs["block0/conv_op"]
    probs["block9/kernel"] = np.ones(2) / 2
    with pytest.raises(ValueError) as info:
        expected(probs)
    assert str(info.value) == (
        "probabilities must be given for exactly the 42 decisions of "
        "sharing='block'; missing ['block0/conv_op'], unexpected ['block9/kernel']"
    )


def test_a_wrong_length_is_named(mnas_expected):
    expected = mnas_expected["layer"]
    probs = expected.one_hot([0] * len(expected.decision_names))
    probs["block2/layer1/kernel"] = np.ones(3) / 3
    with pytest.raises(ValueError) as info:
        expected(probs)
    assert str(info.value) == (
        "probabilities for 'block2/layer1/kernel' must have shape [2], got (3,)"
    )


def test_a_table_for_another_space_is_refused():
    tiny = synthetic_table(tiny_space(), num_classes=10)
    with pytest.raises(LookupTableError) as info:
        ExpectedLatency(tiny, MNASNET_SPACE)
    assert str(info.value) == (
        f"lookup table was built for search space {tiny_space().identity()}, not "
        f"for {MNASNET_SPACE.identity()}; build a table for this space with "
        "`mnas-latency --build_lut`"
    )


def test_missing_entries_are_measured_or_named(tmp_path):
    space = tiny_space()
    backend = FixedBackend(ms=1.0)
    source = synthetic_table(space, num_classes=10)
    names = source.keys()
    path = tmp_path / "t.jsonl"
    table = LookupTable.create(path, new_table_header(backend, space, 10))
    for key in names[2:]:
        table.add(key, source.get(key))
    with pytest.raises(MissingEntryError) as info:
        ExpectedLatency(table, space)
    assert sorted(str(k) for k in info.value.keys) == sorted(names[:2])
    expected = ExpectedLatency(LatencyPredictor(table, backend), space)
    assert len(backend.calls) == 2
    assert len(LookupTable.load(path)) == len(names)
    actions = space.sample(1)
    assert float(expected(expected.one_hot(actions))) == pytest.approx(
        LatencyPredictor(table).predict(space.decode(actions)), rel=1e-5
    )
