"""The LSTM policy: spec from decisions, sampling, teacher forcing, greedy decode."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from mnas.controller.policy import (
    LSTMPolicy,
    PolicySpec,
    log_prob_function,
    sample_function,
)
from mnas.search_space.decision import Decision

# Two kinds of different sizes interleaved, so padding and masking matter.
DECISIONS = (
    Decision("block0/op", "op", ("a", "b", "c", "d", "e")),
    Decision("block0/kernel", "kernel", ("3", "5")),
    Decision("block1/op", "op", ("a", "b", "c", "d", "e")),
    Decision("block1/kernel", "kernel", ("3", "5")),
)
SPEC = PolicySpec.from_decisions(DECISIONS, hidden_size=8)
SEED = tf.constant([4, 2], tf.int32)


def test_spec_shares_heads_per_kind_in_first_seen_order():
    spec = PolicySpec.from_decisions(DECISIONS, hidden_size=8)
    assert spec.step_kinds == (0, 1, 0, 1)
    assert spec.kind_sizes == (5, 2)
    # One embedding table per decision, so the LSTM knows which block it is in.
    assert spec.step_tables == (0, 1, 2, 3)
    assert spec.table_sizes == (5, 2, 5, 2)
    assert spec.embedding_size == 8  # None means hidden_size


def test_spec_with_shared_embeddings_has_one_table_per_kind():
    spec = PolicySpec.from_decisions(
        DECISIONS, hidden_size=8, embedding_size=3, share_embeddings=True
    )
    assert spec.step_tables == (0, 1, 0, 1)
    assert spec.table_sizes == (5, 2)
    assert spec.embedding_size == 3
    assert len(LSTMPolicy(spec).embeddings) == 2


def test_one_kind_with_two_sizes_gets_a_head_per_size():
    # e.g. mnasnet-mbconv: the first block's one conv op, the others' two.
    mixed = (*DECISIONS, Decision("block2/kernel", "kernel", ("3", "5", "7")))
    spec = PolicySpec.from_decisions(mixed, hidden_size=8)
    assert spec.step_kinds == (0, 1, 0, 1, 2)
    assert spec.kind_sizes == (5, 2, 3)
    assert spec.table_sizes == (5, 2, 5, 2, 3)


def _all_actions(decisions) -> tf.Tensor:
    grid = itertools.product(*(range(d.num_choices) for d in decisions))
    return tf.constant(list(grid), tf.int32)


def test_sampled_log_prob_and_entropy_equal_teacher_forced_ones():
    policy = LSTMPolicy(SPEC, init_range=1.0, seed=1)
    actions, log_prob, entropy = policy.sample(SEED, count=32)
    forced_log_prob, forced_entropy = policy.log_prob_and_entropy(actions)
    np.testing.assert_allclose(log_prob.numpy(), forced_log_prob.numpy(), atol=1e-5)
    np.testing.assert_allclose(entropy.numpy(), forced_entropy.numpy(), atol=1e-5)
    # The rows differ, so this compared many different paths.
    assert len({tuple(row) for row in actions.numpy().tolist()}) > 10


def test_log_probs_of_every_architecture_sum_to_one():
    policy = LSTMPolicy(SPEC, init_range=1.0, seed=2)
    log_prob, _ = policy.log_prob_and_entropy(_all_actions(DECISIONS))
    assert math.fsum(np.exp(log_prob.numpy().astype(np.float64))) == pytest.approx(
        1.0, abs=1e-5
    )


def test_zero_weights_give_the_uniform_policy_over_real_choices_only():
    """Padding columns of the smaller head are masked: with all logits equal,
    a 2-choice step has entropy log 2, not log 5."""
    policy = LSTMPolicy(SPEC, init_range=1e-30, seed=0)
    actions, log_prob, entropy = policy.sample(SEED, count=2000)
    uniform = sum(math.log(d.num_choices) for d in DECISIONS)
    np.testing.assert_allclose(log_prob.numpy(), -uniform, rtol=1e-5)
    np.testing.assert_allclose(entropy.numpy(), uniform, rtol=1e-5)
    for column, decision in enumerate(DECISIONS):
        counts = np.bincount(actions.numpy()[:, column])
        assert len(counts) == decision.num_choices  # never a padding column
        expected = 2000 / decision.num_choices
        assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))


def test_same_weights_and_seed_same_samples_other_seed_differs():
    first = LSTMPolicy(SPEC, seed=3)
    second = LSTMPolicy(SPEC, seed=3)
    for mine, theirs in zip(first.variables, second.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    a = first.sample(SEED, count=8)
    b = second.sample(SEED, count=8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    other = first.sample(tf.constant([4, 3], tf.int32), count=8)
    assert not np.array_equal(a[0].numpy(), other[0].numpy())
    other_init = LSTMPolicy(SPEC, seed=4)
    assert not np.array_equal(
        first.head_kernels[0].numpy(), other_init.head_kernels[0].numpy()
    )


def test_most_likely_follows_forced_logits():
    policy = LSTMPolicy(SPEC, seed=0)
    target = {0: 3, 1: 1}  # per kind: op "d", kernel "5"
    for kind, choice in target.items():
        bias = np.zeros(SPEC.kind_sizes[kind], np.float32)
        bias[choice] = 50.0
        policy.head_biases[kind].assign(bias)
    assert policy.most_likely().numpy().tolist() == [3, 1, 3, 1]
    actions, _, _ = policy.sample(SEED, count=4)
    assert actions.numpy().tolist() == [[3, 1, 3, 1]] * 4


def test_most_likely_is_the_greedy_path_of_the_joint_distribution():
    """Step s picks argmax_b P(prefix*, b), the marginal summed over every
    later action; computed here by enumerating all 100 architectures."""
    policy = LSTMPolicy(SPEC, init_range=1.0, seed=5)
    everything = _all_actions(DECISIONS)
    log_prob, _ = policy.log_prob_and_entropy(everything)
    joint = dict(
        zip(
            map(tuple, everything.numpy().tolist()),
            np.exp(log_prob.numpy().astype(np.float64)),
            strict=True,
        )
    )
    greedy: list[int] = []
    for step, decision in enumerate(DECISIONS):
        marginal = [
            sum(p for a, p in joint.items() if a[: step + 1] == (*greedy, b))
            for b in range(decision.num_choices)
        ]
        greedy.append(int(np.argmax(marginal)))
    assert policy.most_likely().numpy().tolist() == greedy


def test_temperature_flattens_and_tanh_constant_bounds_the_policy():
    actions = _all_actions(DECISIONS)
    uniform = -sum(math.log(d.num_choices) for d in DECISIONS)
    sharp = PolicySpec.from_decisions(DECISIONS, hidden_size=8)
    hot = PolicySpec.from_decisions(DECISIONS, hidden_size=8, temperature=1e4)
    sharp_policy = LSTMPolicy(sharp, init_range=1.0, seed=6)
    hot_policy = LSTMPolicy(hot, init_range=1.0, seed=6)
    sharp_log_prob, _ = sharp_policy.log_prob_and_entropy(actions)
    hot_log_prob, _ = hot_policy.log_prob_and_entropy(actions)
    assert np.ptp(sharp_log_prob.numpy()) > 1.0
    np.testing.assert_allclose(hot_log_prob.numpy(), uniform, atol=1e-2)

    # c * tanh bounds each logit to [-c, c]: no step's probability can fall
    # below e^-2c / (e^-2c + n - 1), whatever the weights.
    clipped = PolicySpec.from_decisions(DECISIONS, hidden_size=8, tanh_constant=0.5)
    clipped_policy = LSTMPolicy(clipped, init_range=1.0, seed=6)
    for kind in range(2):
        clipped_policy.head_biases[kind].assign(
            np.linspace(-100.0, 100.0, clipped.kind_sizes[kind], dtype=np.float32)
        )
    clipped_log_prob, _ = clipped_policy.log_prob_and_entropy(actions)
    floor = sum(
        math.log(math.exp(-1.0) / (math.exp(-1.0) + d.num_choices - 1))
        for d in DECISIONS
    )
    assert clipped_log_prob.numpy().min() >= floor - 1e-4


def test_every_policy_of_one_spec_shares_one_trace():
    spec = PolicySpec.from_decisions(DECISIONS, hidden_size=6)
    assert sample_function(spec) is sample_function(
        PolicySpec.from_decisions(DECISIONS, hidden_size=6)
    )
    for seed in (0, 1):
        policy = LSTMPolicy(spec, seed=seed)
        policy.sample(SEED, count=3)
        policy.sample(SEED, count=5)
        policy.log_prob_and_entropy(tf.zeros([2, 4], tf.int32))
        policy.log_prob_and_entropy(tf.zeros([7, 4], tf.int32))
    assert sample_function(spec).experimental_get_tracing_count() == 1
    assert log_prob_function(spec).experimental_get_tracing_count() == 1
