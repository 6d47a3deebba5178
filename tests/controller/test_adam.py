"""The controller's Adam: Keras' update rule, None gradients, clipping, resume."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnas.controller.adam import AdamHyper, AdamState, apply_adam

SHAPES = ((3, 2), (4,))


def _values(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]


def _gradients(steps: int) -> list[list[np.ndarray]]:
    return [_values(100 + step) for step in range(steps)]


def _ours(hyper: AdamHyper, gradients) -> list[np.ndarray]:
    variables = [tf.Variable(v) for v in _values(0)]
    state = AdamState(variables)
    for step in gradients:
        apply_adam(hyper, state.slots, variables, [tf.constant(g) for g in step])
    return [v.numpy() for v in variables]


def _keras(optimizer: keras.optimizers.Optimizer, gradients) -> list[np.ndarray]:
    variables = [keras.Variable(v) for v in _values(0)]
    for step in gradients:
        optimizer.apply_gradients(
            zip([tf.constant(g) for g in step], variables, strict=True)
        )
    return [np.asarray(v) for v in variables]


def test_matches_keras_adam_over_several_steps():
    gradients = _gradients(6)
    ours = _ours(AdamHyper(learning_rate=0.05), gradients)
    reference = _keras(keras.optimizers.Adam(learning_rate=0.05), gradients)
    for mine, theirs, start in zip(ours, reference, _values(0), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
        assert not np.allclose(mine, start)  # the variables really moved


def test_non_default_betas_and_epsilon_match_keras():
    hyper = AdamHyper(learning_rate=0.1, beta_1=0.5, beta_2=0.8, epsilon=1e-3)
    reference = keras.optimizers.Adam(
        learning_rate=0.1, beta_1=0.5, beta_2=0.8, epsilon=1e-3
    )
    gradients = _gradients(4)
    for mine, theirs in zip(
        _ours(hyper, gradients), _keras(reference, gradients), strict=True
    ):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_global_clipnorm_matches_keras():
    # Gradients of norm about 3 clipped to 0.5 change every step's update.
    gradients = _gradients(5)
    clipped = _ours(AdamHyper(learning_rate=0.05, global_clipnorm=0.5), gradients)
    reference = _keras(
        keras.optimizers.Adam(learning_rate=0.05, global_clipnorm=0.5), gradients
    )
    for mine, theirs in zip(clipped, reference, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    unclipped = _ours(AdamHyper(learning_rate=0.05), gradients)
    assert not np.allclose(clipped[0], unclipped[0])


def test_a_none_gradient_counts_as_zero():
    hyper = AdamHyper(learning_rate=0.1)
    variables = [tf.Variable(v) for v in _values(0)]
    state = AdamState(variables)
    first, second = _gradients(2)
    # Step 1: no gradient for the second variable, so it does not move.
    apply_adam(hyper, state.slots, variables, [tf.constant(first[0]), None])
    np.testing.assert_array_equal(variables[1].numpy(), _values(0)[1])
    np.testing.assert_array_equal(state.first_moments[1].numpy(), np.zeros(4))
    # Step 2: a None gradient keeps the momentum going exactly like zeros.
    zeros = [tf.Variable(v) for v in _values(0)]
    zeros_state = AdamState(zeros)
    apply_adam(hyper, zeros_state.slots, zeros, [tf.constant(first[0]), tf.zeros(4)])
    apply_adam(hyper, state.slots, variables, [None, tf.constant(second[1])])
    apply_adam(
        hyper, zeros_state.slots, zeros, [tf.zeros((3, 2)), tf.constant(second[1])]
    )
    for with_none, with_zeros in zip(variables, zeros, strict=True):
        np.testing.assert_array_equal(with_none.numpy(), with_zeros.numpy())
    assert int(state.step.numpy()) == 2


def test_gradients_must_match_the_variables():
    variables = [tf.Variable(v) for v in _values(0)]
    state = AdamState(variables)
    with pytest.raises(ValueError, match="zip"):
        apply_adam(AdamHyper(0.1), state.slots, variables, [tf.zeros((3, 2))])


def test_one_trace_serves_every_state_of_the_same_shape():
    hyper = AdamHyper(learning_rate=0.05)

    @tf.function
    def step(slots, variables, gradients):
        apply_adam(hyper, slots, variables, gradients)

    gradients = [tf.constant(g) for g in _gradients(1)[0]]
    finals = []
    for _ in range(2):
        variables = [tf.Variable(v) for v in _values(0)]
        state = AdamState(variables)
        step(state.slots, variables, gradients)
        step(state.slots, variables, gradients)
        finals.append([v.numpy() for v in variables])
    assert step.experimental_get_tracing_count() == 1
    eager = _ours(hyper, [_gradients(1)[0]] * 2)
    for traced in finals:
        for mine, expected in zip(traced, eager, strict=True):
            np.testing.assert_allclose(mine, expected, rtol=1e-6)


def test_checkpoint_restores_the_slots_exactly(tmp_path):
    hyper = AdamHyper(learning_rate=0.05)
    gradients = [[tf.constant(g) for g in step] for step in _gradients(6)]
    variables = [tf.Variable(v) for v in _values(0)]
    state = AdamState(variables)
    checkpoint = tf.train.Checkpoint(adam=state, variables=variables)
    for step in gradients[:3]:
        apply_adam(hyper, state.slots, variables, step)
    path = checkpoint.write(str(tmp_path / "ckpt"))
    for step in gradients[3:]:
        apply_adam(hyper, state.slots, variables, step)

    resumed_variables = [tf.Variable(v) for v in _values(1)]
    resumed = AdamState(resumed_variables)
    tf.train.Checkpoint(adam=resumed, variables=resumed_variables).read(
        path
    ).assert_consumed()
    assert int(resumed.step.numpy()) == 3
    for step in gradients[3:]:
        apply_adam(hyper, resumed.slots, resumed_variables, step)
    for mine, expected in zip(resumed_variables, variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), expected.numpy())
