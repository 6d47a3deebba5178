"""Autoregressive LSTM policy over a sequence of categorical decisions.

As in NASNet and MnasNet: one LSTM step per decision, whose input is the
embedding of the previous action (a learned start vector for the first step),
and one softmax head per decision *kind*, shared by every block, so what is
learned about e.g. kernel sizes transfers between blocks while the LSTM state
tells the blocks apart.

The graph functions are pure functions of a :class:`PolicyWeights` structure
and are cached per :class:`PolicySpec`: TF traces a function once per variable
shapes, not per variable, so every policy of the same shape (a resumed
controller, a second controller in the same process) reuses one trace.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

from mnas.search_space.decision import Decision

tfd = tfp.distributions

# LSTM forget-gate bias, so early on the cell remembers the whole prefix.
_FORGET_BIAS = 1.0
# Logit of padding columns when heads of different sizes are stacked; finite so
# the entropy has no 0 * inf.
_MASKED_LOGIT = -1e9


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """Everything that shapes the policy graph; the key of the trace cache.

    Attributes:
      step_kinds: index into ``kind_sizes`` for each decision, in order.
      kind_sizes: number of choices of each head (one per decision kind and
        number of choices).
      step_tables: index into ``table_sizes`` of the embedding table that
        embeds each decision's action (as the next step's input).
      table_sizes: rows of each action-embedding table.
    """

    step_kinds: tuple[int, ...]
    kind_sizes: tuple[int, ...]
    step_tables: tuple[int, ...]
    table_sizes: tuple[int, ...]
    hidden_size: int = 100
    num_layers: int = 1
    embedding_size: int = 100
    temperature: float = 1.0
    tanh_constant: float | None = None

    @classmethod
    def from_decisions(
        cls,
        decisions: Sequence[Decision],
        *,
        hidden_size: int = 100,
        num_layers: int = 1,
        embedding_size: int | None = None,
        temperature: float = 1.0,
        tanh_constant: float | None = None,
        share_embeddings: bool = False,
    ) -> PolicySpec:
        """Heads are shared per kind (per kind and number of choices, where
        one kind's decisions differ in it, as a first block with ops of its
        own); embeddings per decision unless shared.

        Per-decision embeddings tell the LSTM which block it is in, so shared
        heads can still make different choices per block.
        """
        heads = {
            key: i
            for i, key in enumerate(
                dict.fromkeys((d.kind, d.num_choices) for d in decisions)
            )
        }
        step_kinds = tuple(heads[(d.kind, d.num_choices)] for d in decisions)
        kind_sizes = tuple(size for _, size in heads)
        if share_embeddings:
            step_tables, table_sizes = step_kinds, kind_sizes
        else:
            step_tables = tuple(range(len(decisions)))
            table_sizes = tuple(d.num_choices for d in decisions)
        return cls(
            step_kinds=step_kinds,
            kind_sizes=kind_sizes,
            step_tables=step_tables,
            table_sizes=table_sizes,
            hidden_size=hidden_size,
            num_layers=num_layers,
            embedding_size=embedding_size or hidden_size,
            temperature=float(temperature),
            tanh_constant=None if tanh_constant is None else float(tanh_constant),
        )


class PolicyWeights(NamedTuple):
    """The policy's variables, passed explicitly into the shared graph functions."""

    start: tf.Variable
    embeddings: tuple[tf.Variable, ...]
    lstm_kernels: tuple[tf.Variable, ...]
    lstm_biases: tuple[tf.Variable, ...]
    head_kernels: tuple[tf.Variable, ...]
    head_biases: tuple[tf.Variable, ...]


class LSTMPolicy(tf.Module):
    """Owns the policy's variables; sampling is stateless, so the seed of each
    call fully determines its result (reproducible and resumable proposals)."""

    def __init__(self, spec: PolicySpec, *, init_range: float = 0.1, seed: int = 0):
        super().__init__(name="lstm_policy")
        self.spec = spec
        num_kinds = len(spec.kind_sizes)
        init_seeds = iter(
            tfp.random.split_seed(
                (seed, 0),
                n=1 + len(spec.table_sizes) + num_kinds + spec.num_layers,
                salt="init",
            )
        )

        def uniform(shape: list[int], name: str) -> tf.Variable:
            value = tf.random.stateless_uniform(
                shape, seed=next(init_seeds), minval=-init_range, maxval=init_range
            )
            return tf.Variable(value, name=name)

        hidden, embedding = spec.hidden_size, spec.embedding_size
        with self.name_scope:
            self.start = uniform([1, embedding], "start")
            self.embeddings = tuple(
                uniform([size, embedding], f"embedding_{t}")
                for t, size in enumerate(spec.table_sizes)
            )
            input_sizes = [embedding] + [hidden] * (spec.num_layers - 1)
            self.lstm_kernels = tuple(
                uniform([size + hidden, 4 * hidden], f"lstm_{layer}_kernel")
                for layer, size in enumerate(input_sizes)
            )
            self.lstm_biases = tuple(
                tf.Variable(tf.zeros([4 * hidden]), name=f"lstm_{layer}_bias")
                for layer in range(spec.num_layers)
            )
            self.head_kernels = tuple(
                uniform([hidden, size], f"head_{k}_kernel")
                for k, size in enumerate(spec.kind_sizes)
            )
            self.head_biases = tuple(
                tf.Variable(tf.zeros([size]), name=f"head_{k}_bias")
                for k, size in enumerate(spec.kind_sizes)
            )

    @property
    def weights(self) -> PolicyWeights:
        return PolicyWeights(
            self.start,
            self.embeddings,
            self.lstm_kernels,
            self.lstm_biases,
            self.head_kernels,
            self.head_biases,
        )

    def sample(
        self, seed: tf.Tensor, count: int = 1
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``count`` architectures from an int32 ``[2]`` seed.

        Returns (actions ``[count, steps]``, log_prob ``[count]``, entropy
        ``[count]``); the result depends only on (weights, seed, count).
        """
        return sample_function(self.spec)(
            self.weights, seed, tf.constant(count, tf.int32)
        )

    def log_prob_and_entropy(self, actions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-row log-prob and summed step entropies of ``[batch, steps]`` actions."""
        function = log_prob_function(self.spec)
        # Trace for any batch size up front, so no batch size causes a retrace.
        function.get_concrete_function(self.weights, self.actions_spec)
        return function(self.weights, actions)

    @property
    def actions_spec(self) -> tf.TensorSpec:
        """Actions of any batch size: ``[None, steps]`` int32."""
        return tf.TensorSpec([None, len(self.spec.step_kinds)], tf.int32)

    def most_likely(self) -> tf.Tensor:
        """Greedy decode: the argmax action at every step."""
        return most_likely_function(self.spec)(self.weights)


# ------------------------------------------------------------ pure graph code

Chooser = Callable[[tf.Tensor, tfd.Categorical], tf.Tensor]


def _lstm(
    weights: PolicyWeights, x: tf.Tensor, state: list[tuple[tf.Tensor, tf.Tensor]]
) -> tuple[tf.Tensor, list[tuple[tf.Tensor, tf.Tensor]]]:
    new_state = []
    for kernel, bias, (h, c) in zip(
        weights.lstm_kernels, weights.lstm_biases, state, strict=True
    ):
        gates = tf.matmul(tf.concat([x, h], axis=1), kernel) + bias
        i, f, g, o = tf.split(gates, 4, axis=1)
        c = tf.sigmoid(f + _FORGET_BIAS) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        new_state.append((h, c))
        x = h
    return x, new_state


def _scale(spec: PolicySpec, logits: tf.Tensor) -> tf.Tensor:
    """Temperature, then NASNet's optional tanh clipping."""
    logits = logits / spec.temperature
    if spec.tanh_constant is not None:
        logits = spec.tanh_constant * tf.tanh(logits)
    return logits


def unroll(
    spec: PolicySpec,
    weights: PolicyWeights,
    batch: tf.Tensor | int,
    choose: Chooser,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Runs every decision step; ``choose(step, dist)`` picks the actions.

    A ``tf.while_loop`` keeps the graph (and its gradient) the size of one
    step whatever the number of decisions, so tracing takes well under a
    second where a Python-unrolled graph took several. Heads of different
    sizes are stacked, padded and masked so the loop body can index them by
    the step's kind.

    Returns:
      actions ``[batch, steps]`` int32, log_prob ``[batch]``, entropy ``[batch]``.
    """
    num_steps = len(spec.step_kinds)
    zeros = tf.zeros([batch, spec.hidden_size])
    state = [(zeros, zeros) for _ in range(spec.num_layers)]
    x = tf.tile(weights.start, [batch, 1])

    width = max(spec.kind_sizes)
    step_kinds = tf.constant(spec.step_kinds, tf.int32)
    kernels = tf.stack(
        [tf.pad(k, [[0, 0], [0, width - k.shape[1]]]) for k in weights.head_kernels]
    )
    biases = tf.stack(
        [tf.pad(b, [[0, width - b.shape[0]]]) for b in weights.head_biases]
    )
    valid = tf.constant([[j < size for j in range(width)] for size in spec.kind_sizes])
    table = tf.concat(weights.embeddings, axis=0)
    # Row of each step's first action in the concatenated embedding table.
    offsets = tf.constant(
        [sum(spec.table_sizes[:t]) for t in spec.step_tables], tf.int32
    )

    def body(step, x, state, actions, log_prob, entropy):
        kind = step_kinds[step]
        h, state = _lstm(weights, x, state)
        logits = _scale(spec, tf.matmul(h, kernels[kind]) + biases[kind])
        dist = tfd.Categorical(logits=tf.where(valid[kind], logits, _MASKED_LOGIT))
        action = tf.cast(choose(step, dist), tf.int32)
        log_prob += dist.log_prob(action)
        entropy += dist.entropy()
        x = tf.gather(table, offsets[step] + action)
        return step + 1, x, state, actions.write(step, action), log_prob, entropy

    _, _, _, actions, log_prob, entropy = tf.while_loop(
        lambda step, *_: step < num_steps,
        body,
        (
            tf.constant(0),
            x,
            state,
            tf.TensorArray(tf.int32, size=num_steps),
            tf.zeros([batch]),
            tf.zeros([batch]),
        ),
    )
    return tf.transpose(actions.stack()), log_prob, entropy


@functools.cache
def sample_function(spec: PolicySpec) -> Callable[..., tuple[tf.Tensor, ...]]:
    """Traced sampler: (weights, seed, count) -> (actions, log_prob, entropy)."""

    @tf.function
    def sample(weights: PolicyWeights, seed: tf.Tensor, count: tf.Tensor):
        step_seeds = tf.stack(
            tfp.random.split_seed(seed, n=len(spec.step_kinds), salt="sample")
        )
        return unroll(
            spec,
            weights,
            count,
            lambda step, dist: dist.sample(seed=step_seeds[step]),
        )

    return sample


@functools.cache
def log_prob_function(spec: PolicySpec) -> Callable[..., tuple[tf.Tensor, ...]]:
    """Traced teacher-forced pass: (weights, actions) -> (log_prob, entropy)."""

    @tf.function
    def log_prob(weights: PolicyWeights, actions: tf.Tensor):
        _, log_prob, entropy = unroll(
            spec,
            weights,
            tf.shape(actions)[0],
            lambda step, dist: tf.gather(actions, step, axis=1),
        )
        return log_prob, entropy

    return log_prob


@functools.cache
def most_likely_function(spec: PolicySpec) -> Callable[..., tf.Tensor]:
    """Traced greedy decode: (weights) -> actions."""

    @tf.function
    def most_likely(weights: PolicyWeights):
        actions, _, _ = unroll(spec, weights, 1, lambda step, dist: dist.mode())
        return actions[0]

    return most_likely
