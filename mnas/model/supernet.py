"""FBNet-style supernet over a ``FactorizedSearchSpace`` (differentiable search).

Every searchable layer slot holds all candidate operations of the space; its
output is their sum weighted by architecture weights ``m`` (a Gumbel-softmax
sample of the logits θ while searching, ``softmax(θ/τ)`` otherwise). θ is one
logit vector per decision of ``space.decisions_for(sharing)``, so the same
code serves MnasNet's per-block sharing (``"block"``) and FBNet's per-layer
choices (``"layer"``).

How each decision enters the network, chosen so that a one-hot ``m`` computes
exactly the plain network ``mnas.model.builder`` builds from the decoded spec
(``copy_weights_to`` maps the active path's weights onto it):

* ``conv_op``: one candidate per op (conv, dsconv, mbconv e1/e3/e6); the slot's
  output is ``Σ_j m_j · op_j(x)``.
* ``kernel``: each candidate keeps one kernel of the largest size; a smaller
  size is its centre (TuNAS), and the candidate convolves once with
  ``W ⊙ Σ_k m_k · centre_k`` (a "same" convolution with a zero-padded smaller
  kernel is exactly the smaller one's).
* ``se_ratio``: inside each candidate the gate becomes ``m_0 + Σ_r m_r · SE_r(x)``,
  every ratio's gate using the first ``squeeze_r`` channels of one pair of
  SE weights.
* ``skip``: ``none`` adds nothing, ``identity`` adds ``x`` where the plain
  network would (stride 1, equal widths), ``pool`` adds the pooled input,
  projected with 1x1 conv + BN where the widths differ.
* ``filters``: candidates are built at the block's widest choice and the
  output channels are multiplied by ``Σ_f m_f · 1[c < width_f]``; channels that
  derive from the input width (expansion, depthwise, SE squeeze) are masked by
  the input's width mix likewise, so a masked network computes exactly the
  narrower one.
* ``layers``: slot ``r`` exists with probability ``P(layers > r)``; its output
  is ``p · layer(x) + (1 − p) · x`` (FBNet's "skip" candidate).

Weights are shared as in TuNAS, because a path's weights must learn from the
steps of other paths for weight-sharing evaluation to rank anything
(``benchmarks/shared_learning.py``: separate weights per kernel size or conv
op stay near chance). Within a slot, the candidates of one op family
(``OpType.weight_family``: MBConv at every expansion and the
depthwise-separable conv) share each equally named part's conv and SE
weights, held once at the largest shape any of them asks for; a use takes the
centre of the spatial dimensions and the first channels of the others, the
same slices ``copy_weights_to`` copies. Batch norms stay per candidate.

Each candidate's structure is its op's in ``mnas.model.ops`` (so a registered
op becomes a candidate when a space's ``conv_ops`` lists it); this module
supplies the primitives: ``_SupernetOps`` (mixed kernels, masked widths, the
SE-gate mix) and ``_CopyOps`` (the weight copy onto a plain model).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnas.model import ops
from mnas.model.plan import LayerPlan, conv_names, depthwise_names, plan_layers
from mnas.search_space import ArchSpec, FactorizedSearchSpace
from mnas.search_space.space import BLOCK_DECISION_KINDS, LayerSlot, decision_name

#: ``training`` mode of a forward pass that normalizes by the batch without
#: updating the moving statistics.
BATCH_STATS = "batch_stats"


def _conv_init() -> keras.initializers.Initializer:
    return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


def _width_mask(
    probs: tf.Tensor | None, widths: tuple[int, ...], channels: int, scale: float = 1
) -> tf.Tensor:
    """``Σ_i probs_i · 1[c < f(widths_i)]`` over ``channels`` (shape [channels]).

    ``scale`` maps a width to the channel count that depends on it (expansion
    ratio; an SE ratio uses ``max(1, int(w * ratio))``)."""
    table = np.zeros((len(widths), channels), np.float32)
    for i, width in enumerate(widths):
        table[i, : _scaled_width(width, scale)] = 1.0
    if probs is None:  # a fixed width (the stem)
        return tf.constant(table[0])
    if isinstance(probs, np.ndarray):  # a path decided on the host
        return tf.constant(probs.astype(np.float32) @ table)
    return tf.linalg.matvec(tf.constant(table), tf.cast(probs, tf.float32), True)


def _part(weight, shape: tuple[int, ...]):
    """The ``shape`` part of a shared weight: its centre along the spatial
    dimensions of a conv kernel, its first entries along the others."""
    full = tuple(weight.shape)
    if full == tuple(shape):
        return weight
    index = []
    for axis, (have, want) in enumerate(zip(full, shape, strict=True)):
        start = (have - want) // 2 if len(full) == 4 and axis < 2 else 0
        index.append(slice(start, start + want))
    return weight[tuple(index)]


def _centre_masks(sizes: tuple[int, ...], k_max: int) -> np.ndarray:
    """``[len(sizes), k_max, k_max]``: ones on each size's centre square."""
    masks = np.zeros((len(sizes), k_max, k_max), np.float32)
    for i, k in enumerate(sizes):
        start = (k_max - k) // 2
        masks[i, start : start + k, start : start + k] = 1.0
    return masks


class _SharedWeights:
    """The conv and SE weights the candidates of one slot share (see the
    module docstring): requested by key while the candidates are walked,
    then created once at the largest shape asked for."""

    def __init__(self) -> None:
        self.requests: dict[str, tuple[tuple[int, ...], Any]] = {}
        self.variables: dict[str, Any] = {}

    def request(self, key: str, shape: tuple[int, ...], initializer) -> None:
        if self.variables:
            raise RuntimeError("the shared weights are already created")
        if key in self.requests:
            known = self.requests[key][0]
            if len(known) != len(shape):
                raise ValueError(f"weight {key!r} asked for as {known} and {shape}")
            shape = tuple(max(a, b) for a, b in zip(known, shape))
        self.requests[key] = (tuple(shape), initializer)

    def create(self, owner: keras.layers.Layer) -> None:
        for key, (shape, initializer) in self.requests.items():
            init = _conv_init() if initializer == "conv" else initializer
            self.variables[key] = owner.add_weight(
                shape=shape, initializer=init, name=key
            )


def _scaled_width(width: int, scale: float) -> int:
    if scale >= 1:
        return int(width * scale)
    return max(1, int(width * scale))


def _gated(
    weight: tf.Tensor,
    branch: Callable[[], tf.Tensor],
    zeros: Callable[[], tf.Tensor],
    single_path: bool,
) -> tf.Tensor:
    """``weight · branch()``. On a single path (``Supernet.call(...,
    single_path=True)``) a zero weight skips the branch inside one traced
    function: its ops do not run, its variables get zero gradients and its
    batch-norm statistics stay as they were."""
    if not single_path:
        return weight * branch()
    if _on_host(weight):  # decided here: no op for a skipped branch
        if weight <= 0:
            return 0.0
        return branch() if weight == 1 else weight * branch()
    return tf.cond(weight > 0, lambda: weight * branch(), zeros)


def _plus(total, term):
    """``total + term``, without an op where either is a Python zero (a
    branch a host path skipped, or the start of a sum)."""
    if isinstance(term, float) and term == 0.0:
        return total
    if isinstance(total, float) and total == 0.0:
        return term
    return total + term


def _on_host(value) -> bool:
    """A number known before the step runs (a host-decided path's weight)."""
    return isinstance(value, float | int | np.floating | np.ndarray)


def _zeros(x: tf.Tensor, stride: int, channels: int) -> Callable[[], tf.Tensor]:
    """Zeros shaped like ``x`` after a 'same' ``stride``, ``channels`` wide."""

    def make() -> tf.Tensor:
        shape = tf.shape(x)
        return tf.zeros(
            tf.stack(
                [shape[0], (shape[1] + stride - 1) // stride]
                + [(shape[2] + stride - 1) // stride, channels]
            ),
            x.dtype,
        )

    return make


def _fit_channels(x: tf.Tensor, channels: int) -> tf.Tensor:
    """Pads with zeros or cuts to ``channels`` (only masked zeros are cut)."""
    have = x.shape[-1]
    if have == channels:
        return x
    if have > channels:
        return x[..., :channels]
    return tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, channels - have]])


class _BatchNorm:
    """Batch norm on variables of its owning layer: Keras' layer costs more to
    trace than the whole normalization, and the supernet has hundreds."""

    def __init__(self, owner: keras.layers.Layer, name: str, channels: int, bn: dict):
        self.momentum = bn["momentum"]
        self.epsilon = bn["epsilon"]
        self.gamma = owner.add_weight(
            shape=(channels,), initializer="ones", name=f"{name}_gamma"
        )
        self.beta = owner.add_weight(
            shape=(channels,), initializer="zeros", name=f"{name}_beta"
        )
        self.moving_mean = owner.add_weight(
            shape=(channels,), initializer="zeros", trainable=False, name=f"{name}_mean"
        )
        self.moving_variance = owner.add_weight(
            shape=(channels,), initializer="ones", trainable=False, name=f"{name}_var"
        )

    @property
    def weights(self) -> list:
        """In Keras' order: gamma, beta, moving mean, moving variance."""
        return [self.gamma, self.beta, self.moving_mean, self.moving_variance]

    def __call__(
        self, x: tf.Tensor, training: bool | str | tf.Tensor = False
    ) -> tf.Tensor:
        """``training``: True normalizes by the batch and updates the moving
        statistics; ``BATCH_STATS`` normalizes by the batch and leaves them
        (a shared-weight evaluation: the statistics mix every path); False
        uses them. A boolean tensor normalizes by the batch and updates where
        it is true (one trace for both)."""
        # One fused op (and one gradient op) instead of a dozen small ones:
        # graph size, not FLOPs, bounds the supernet's trace and step times.
        if isinstance(training, tf.Tensor):
            y, mean, variance = self._batch(x)
            self.moving_mean.assign(tf.where(training, mean, self.moving_mean))
            self.moving_variance.assign(
                tf.where(training, variance, self.moving_variance)
            )
            return y
        if training is True or training == BATCH_STATS:
            y, mean, variance = self._batch(x)
            if training is True:
                self.moving_mean.assign(mean)
                self.moving_variance.assign(variance)
            return y
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x,
            self.gamma,
            self.beta,
            mean=self.moving_mean,
            variance=self.moving_variance,
            epsilon=self.epsilon,
            is_training=False,
        )
        return y

    def _batch(self, x: tf.Tensor):
        """Normalized by the batch; with the updated moving statistics."""
        return tf.compat.v1.nn.fused_batch_norm(
            x,
            self.gamma,
            self.beta,
            mean=self.moving_mean,
            variance=self.moving_variance,
            epsilon=self.epsilon,
            is_training=True,
            exponential_avg_factor=1.0 - self.momentum,
        )


_ACTIVATIONS = {"relu": tf.nn.relu, "relu6": tf.nn.relu6, "swish": tf.nn.silu}


class _Masks:
    """Width masks computed once per forward pass (and per branch graph of a
    single path: a tensor made inside one ``tf.cond`` branch cannot serve
    another) and shared by every user."""

    def __init__(self, weights: Mapping[str, tf.Tensor | np.ndarray]):
        self.weights = weights
        self._cache: dict = {}
        #: The weights are numpy arrays: a path decided on the host, run by each
        #: candidate's traced function (``_Candidate.call``).
        self.on_host = all(isinstance(w, np.ndarray) for w in weights.values())

    def get(self, decision, widths, channels, scale: float = 1) -> tf.Tensor:
        graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
        key = (graph, decision, widths, channels, scale)
        if key not in self._cache:
            probs = None if decision is None else self.weights[decision]
            self._cache[key] = _width_mask(probs, widths, channels, scale)
        return self._cache[key]


class _MixedKernel:
    """Stands for the slot's searched kernel in ``OpArgs.kernel``: a conv given
    it keeps one kernel per size and convolves with their mix."""


MIXED_KERNEL = _MixedKernel()


@dataclasses.dataclass(frozen=True)
class _Width:
    """A width mix: ``decision`` picks one of ``widths``, times ``scale``
    (an expansion; an SE ratio); tensors are ``channels`` wide, masked."""

    decision: str | None
    widths: tuple[int, ...]
    scale: float = 1

    @property
    def channels(self) -> int:
        return _scaled_width(max(self.widths), self.scale)

    def __mul__(self, ratio: float) -> _Width:
        return _Width(self.decision, self.widths, self.scale * ratio)

    __rmul__ = __mul__


@dataclasses.dataclass(frozen=True)
class _T:
    """A supernet tensor: ``value`` (None while weights are being created),
    its width, and whether channels past the width still await their mask
    (applied when the next primitive consumes it; the slot masks its output)."""

    value: Any
    width: _Width
    pending: bool = False


class _SupernetOps(ops.Primitives):
    """The supernet's primitives for one owner layer (a candidate op, or a
    slot's skip). Run once with ``masks=None`` to create the weights, then
    ``bound`` to a forward pass's masks."""

    def __init__(
        self,
        owner: keras.layers.Layer,
        slot: LayerSlot,
        space: FactorizedSearchSpace,
        bn: dict,
        shared: _SharedWeights,
        family: str,
    ):
        self.owner = owner
        self.shared = shared
        self.family = family
        self.slot = slot
        self.decisions = slot.kind_decisions
        self.kernel_sizes = tuple(space.kernel_sizes)
        self.k_max = max(self.kernel_sizes)
        # [sizes, k_max, k_max]: each size's centre square of the largest kernel
        self.centres = _centre_masks(self.kernel_sizes, self.k_max)
        self.se_ratios = tuple(space.se_ratios)
        self.act = _ACTIVATIONS[space.activation]
        self.bn_config = bn
        self.variables: dict[str, Any] = {}  # name -> variable or _BatchNorm
        self.keys: dict[str, str] = {}  # name -> its key in ``shared``
        # name -> (decision kind, the choices using it) for the weights only
        # some choices use (the SE gate's: every ratio but 0)
        self.choices: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.choice: tuple[str, tuple[int, ...]] | None = None  # made now
        self.batch_norms: list[_BatchNorm] = []
        self.deferred: list[Callable[[], object]] = []
        self.masks: _Masks | None = None  # None: creating the weights
        self.training: bool | str = False
        self.single_path = False  # skip zero-weight branches (``_gated``)
        self.p_same: tf.Tensor | None = None  # P(input width == output width)

    # -- weights ------------------------------------------------------------------
    def create(self, structure: Callable[[_SupernetOps], object]) -> None:
        """Creates every weight ``structure`` asks for. SE weights come after
        the op's others: the variable order of checkpoints written before the
        ops were shared."""
        structure(self)
        while self.deferred:
            self.deferred.pop(0)()

    def attach(self) -> None:
        """Takes this owner's shared weights once ``shared`` created them."""
        for name, key in self.keys.items():
            self.variables[name] = self.shared.variables[key]

    def bound(self, masks: _Masks, training: bool | str, **fields) -> _SupernetOps:
        view = copy.copy(self)
        view.masks, view.training = masks, training
        for name, value in fields.items():
            setattr(view, name, value)
        return view

    def _scoped(self, choice: tuple[str, tuple[int, ...]]):
        view = copy.copy(self)
        view.choice = choice
        return view

    def trained_variables(self, weights: Mapping[str, np.ndarray]) -> list:
        """The trainable variables a host path (``weights``) trains here: all
        but the SE gate's when it chooses no squeeze-excite."""
        found = []
        for name, value in self.variables.items():
            used = self.choices.get(name)
            if used is not None:
                probs = weights[self.decisions[used[0]]]
                if sum(float(probs[i]) for i in used[1]) <= 0:
                    continue
            found += (
                [value.gamma, value.beta] if isinstance(value, _BatchNorm) else [value]
            )
        return found

    @property
    def _creating(self) -> bool:
        return self.masks is None

    def _var(self, name: str, shape: tuple, initializer="conv"):
        """The ``shape`` part of the family's shared weight ``name`` (None
        while the weights are being asked for)."""
        if self._creating:
            key = f"{self.family}_{name}"
            self.shared.request(key, shape, initializer)
            self.keys[name] = key
            if self.choice is not None:
                self.choices[name] = self.choice
            return None
        if name not in self.variables:
            raise KeyError(f"{self.owner.name}: no weight {name!r}")
        return _part(self.variables[name], shape)

    def _bn(self, name: str, channels: int) -> _BatchNorm:
        if name not in self.variables:
            bn = _BatchNorm(self.owner, name, channels, self.bn_config)
            self.variables[name] = bn
            self.batch_norms.append(bn)
            if self.choice is not None:
                self.choices[name] = self.choice
        return self.variables[name]

    def _kernel(self, base: str, kernel, shape: Callable[[int], tuple]):
        """One kernel (a fixed size) or the searched sizes' mix: the largest
        kernel times ``Σ_k m_k · centre_k``."""
        if not isinstance(kernel, _MixedKernel):
            return self._var(base, shape(kernel))
        w = self._var(base, shape(self.k_max))
        if self._creating:
            return None
        probs = self.masks.weights[self.decisions["kernel"]]
        if isinstance(probs, np.ndarray):  # a path decided on the host
            mix = np.tensordot(probs.astype(np.float32), self.centres, 1)
            if np.all(mix == 1.0):
                return w
            mix = tf.constant(mix)
        else:
            mix = tf.tensordot(tf.cast(probs, tf.float32), tf.constant(self.centres), 1)
        return w * mix[:, :, None, None]

    def _value(self, x: _T) -> tf.Tensor:
        """``x`` with channels past its width zeroed (if still pending)."""
        if not x.pending:
            return x.value
        w = x.width
        return x.value * self.masks.get(w.decision, w.widths, w.channels, w.scale)

    # -- primitives ------------------------------------------------------------------
    def conv_bn(self, x, part, width, kernel, stride, act=True):
        c_in, c_out = x.width.channels, width.channels
        w = self._kernel(part or "conv", kernel, lambda k: (k, k, c_in, c_out))
        bn = self._bn(f"{part}_bn" if part else "bn", c_out)
        if self._creating:
            return _T(None, width)
        y = bn(tf.nn.conv2d(self._value(x), w, stride, "SAME"), training=self.training)
        return _T(self.act(y) if act else y, width, pending=True)

    def depthwise_bn_act(self, x, kernel, stride):
        c = x.width.channels
        w = self._kernel("dw", kernel, lambda k: (k, k, c, 1))
        bn = self._bn("dw_bn", c)
        if self._creating:
            return _T(None, x.width)
        y = tf.nn.depthwise_conv2d(self._value(x), w, (1, stride, stride, 1), "SAME")
        return _T(self.act(bn(y, training=self.training)), x.width, pending=True)

    def _squeeze(self, ratio: float) -> _Width:
        """SE squeezes from the slot's input width (official MnasNet)."""
        return _Width(self.slot.in_decision, self.slot.in_widths, ratio)

    def squeeze_excite(self, x, channels):
        """The gate mixes over SE choices: ``m_0 + Σ_r m_r · gate_r(x)``."""
        ratios = [r for r in self.se_ratios if r > 0]
        if self._creating:
            users = (
                "se_ratio",
                tuple(i for i, r in enumerate(self.se_ratios) if r > 0),
            )
            self.deferred.append(
                lambda: [
                    ops.se_gate(self._scoped(users), x, channels, self._squeeze(r))
                    for r in ratios
                ]
            )
            return x
        y = self._value(x)
        probs = self.masks.weights[self.decisions["se_ratio"]]
        pooled = _zeros(y[:, :1, :1, :], 1, y.shape[-1])  # the gate's shape
        gate = 0.0
        for i, ratio in enumerate(self.se_ratios):
            if ratio <= 0:
                gate = gate + probs[i]
                continue

            def se(ratio=ratio):
                squeeze = self._squeeze(ratio)
                return ops.se_gate(self, _T(y, channels), channels, squeeze).value

            gate = gate + _gated(probs[i], se, pooled, self.single_path)
        return _T(y * gate, x.width)

    def global_pool(self, x, part):
        if self._creating:
            return x
        return _T(tf.reduce_mean(self._value(x), axis=(1, 2), keepdims=True), x.width)

    def conv_bias(self, x, part, width):
        kernel = self._var(part, (1, 1, x.width.channels, width.channels))
        bias = self._var(f"{part}_bias", (width.channels,), "zeros")
        if self._creating:
            return _T(None, width)
        y = tf.nn.conv2d(self._value(x), kernel, 1, "SAME") + bias
        return _T(y, width, pending=True)

    def activation(self, x, part):
        if self._creating:
            return x
        return _T(self.act(x.value), x.width, x.pending)

    def sigmoid(self, x, part):
        if self._creating:
            return x
        return _T(tf.sigmoid(x.value), x.width)

    def multiply(self, x, gate, part):
        if self._creating:
            return x
        return _T(self._value(x) * gate.value, x.width)

    def identity_shortcut(self, x):
        """``x`` weighted by P(equal widths), where the stride allows it."""
        slot = self.slot
        if slot.stride != 1 or not _can_be_same(slot):
            return None
        out = _Width(slot.out_decision, slot.out_widths)
        if self._creating:
            return _T(None, out)
        same = _gated(
            self.p_same,
            lambda: _fit_channels(x.value, slot.out_max),
            _zeros(x.value, 1, slot.out_max),
            self.single_path,
        )
        return _T(same, out)

    def matched_shortcut(self, x):
        """``x`` where the widths agree, projected where they differ, each
        weighted by its probability."""
        slot = self.slot
        out = _Width(slot.out_decision, slot.out_widths)
        if self._creating:
            if _can_differ(slot):
                self.conv_bn(x, "skip", out, 1, 1, act=False)
            return _T(None, out)
        branch = 0.0
        if _can_be_same(slot):
            branch = _gated(
                self.p_same,
                lambda: _fit_channels(x.value, slot.out_max),
                _zeros(x.value, 1, slot.out_max),
                self.single_path,
            )
        if _can_differ(slot):
            projected = _gated(
                1.0 - self.p_same,
                lambda: self.conv_bn(x, "skip", out, 1, 1, act=False).value,
                _zeros(x.value, 1, slot.out_max),
                self.single_path,
            )
            branch = _plus(branch, projected)
        return _T(branch, out)

    def avg_pool(self, x, stride, part):
        if self._creating:
            return x
        return _T(tf.nn.avg_pool2d(x.value, stride, stride, "SAME"), x.width)

    def add(self, y, shortcut):
        return _T(self._value(y) + shortcut.value, y.width)


def _width_pairs(slot: LayerSlot) -> list[tuple[int, int]]:
    return [(i, o) for i in slot.in_widths for o in slot.out_widths]


def _can_be_same(slot: LayerSlot) -> bool:
    return any(i == o for i, o in _width_pairs(slot))


def _can_differ(slot: LayerSlot) -> bool:
    return any(i != o for i, o in _width_pairs(slot))


def _slot_args(slot: LayerSlot, expand_ratio: int = 1) -> ops.OpArgs:
    return ops.OpArgs(
        _Width(slot.in_decision, slot.in_widths),
        _Width(slot.out_decision, slot.out_widths),
        MIXED_KERNEL,
        slot.stride,
        expand_ratio,
    )


class _Candidate(keras.layers.Layer):
    """One conv op of a slot at maximal widths, with mixed kernel and SE."""

    def __init__(
        self,
        slot: LayerSlot,
        conv_op: str,
        expand_ratio: int,
        space: FactorizedSearchSpace,
        bn: dict,
        shared: _SharedWeights,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.conv_op = conv_op
        self.op = ops.get_op(conv_op)
        self.args = _slot_args(slot, expand_ratio)
        self.ops = _SupernetOps(self, slot, space, bn, shared, self.op.family)
        self.ops.create(
            lambda p: self.op.structure(p, _T(None, self.args.c_in), self.args)
        )
        self.built = True

    def call(self, x, masks, training=False, single_path=False):
        if single_path and masks.on_host and training is not False:
            # Batch statistics (updated or not): one trace for both.
            update = tf.constant(training is True)
            weights = tuple(masks.weights[name] for name in self._reads())
            return self._traced()(x, weights, update)
        p = self.ops.bound(masks, training, single_path=single_path)
        return self.op.structure(p, _T(x, self.args.c_in), self.args).value

    def _reads(self) -> dict[str, int]:
        """The decisions this candidate's computation depends on, with their
        number of choices."""
        slot, p = self.ops.slot, self.ops
        reads = {
            slot.kind_decisions["kernel"]: len(p.kernel_sizes),
            slot.kind_decisions["se_ratio"]: len(p.se_ratios),
        }
        if slot.in_decision:
            reads[slot.in_decision] = len(slot.in_widths)
        reads[slot.out_decision] = len(slot.out_widths)
        return reads

    def _traced(self):
        """The candidate as one traced function of (input, the weights of the
        decisions it reads, whether to update batch-norm statistics): traced
        once, it serves every path through this candidate."""
        traced = self.__dict__.get("_path_function")
        if traced is None:
            reads = self._reads()
            names = tuple(reads)
            signature = (
                tf.TensorSpec([None, None, None, self.args.c_in.channels]),
                tuple(tf.TensorSpec([n]) for n in reads.values()),
                tf.TensorSpec([], tf.bool),
            )

            @tf.function(autograph=False, input_signature=signature)
            def traced(x, weights, update):
                masks = _Masks(dict(zip(names, weights)))
                # Inside, nothing branches: the SE gate mixes (exact for one-hot
                # weights; cheaper than a cond to trace and to run).
                return self.call(x, masks, update, single_path=False)

            object.__setattr__(self, "_path_function", traced)
        return traced


class SearchableLayer(keras.layers.Layer):
    """A layer slot: all candidate ops, the skip mix and the existence mix."""

    def __init__(self, slot: LayerSlot, space: FactorizedSearchSpace, bn: dict, **kw):
        super().__init__(name=f"block{slot.block}_slot{slot.slot}", **kw)
        self.slot_spec = slot
        self.skips = tuple(space.skips)
        shared = _SharedWeights()
        self.candidates = [
            _Candidate(
                slot, op.conv_op, op.expand_ratio, space, bn, shared, name=op.label
            )
            for op in space.block_conv_ops(slot.block)
        ]
        self.can_be_same = _can_be_same(slot)
        self.in_width = _slot_args(slot).c_in
        self.ops = _SupernetOps(self, slot, space, bn, shared, "skip")
        self.ops.create(
            lambda p: [
                ops.shortcut(p, _T(None, self.in_width), kind, slot.stride)
                for kind in self.skips
            ]
        )
        shared.create(self)
        for owner in [*(c.ops for c in self.candidates), self.ops]:
            owner.attach()
        self.built = True

    @property
    def num_candidates(self) -> int:
        return len(self.candidates)

    def _p_same(self, weights) -> tf.Tensor:
        """P(input width == output width) under the two width mixes."""
        slot = self.slot_spec
        table = np.array(
            [[float(i == o) for o in slot.out_widths] for i in slot.in_widths],
            np.float32,
        )
        out_p = weights[slot.out_decision]
        host = _on_host(out_p)
        if slot.in_decision is None:
            in_p = np.ones((1,), np.float32)
        elif slot.in_decision == slot.out_decision:
            # a later slot of the block: same width mix
            return 1.0 if host else tf.constant(1.0)
        else:
            in_p = weights[slot.in_decision]
        if host:
            return float(in_p @ table @ out_p)
        return tf.tensordot(in_p, tf.linalg.matvec(tf.constant(table), out_p), 1)

    def call(self, x, masks, training=False, single_path=False):
        weights = masks.weights
        slot = self.slot_spec
        if all(slot.exists):
            return self._layer(x, masks, training, single_path)
        exists = np.array([float(e) for e in slot.exists], np.float32)
        if single_path and masks.on_host:
            p_exist = float(weights[slot.layers_decision] @ exists)
            if p_exist <= 0:
                return x
            if p_exist == 1:
                return self._layer(x, masks, training, single_path)
        else:
            p_exist = tf.tensordot(weights[slot.layers_decision], exists, 1)

        def present():
            y = self._layer(x, masks, training, single_path)
            return p_exist * y + (1.0 - p_exist) * x

        if not single_path or masks.on_host:
            return present()
        return tf.cond(p_exist > 0, present, lambda: x)

    def _layer(self, x, masks, training, single_path):
        """The slot's output if it exists: ops and skips, masked to its width."""
        weights = masks.weights
        slot = self.slot_spec
        kd = slot.kind_decisions
        op_p = weights[kd["conv_op"]]
        out_zeros = _zeros(x, slot.stride, slot.out_max)
        main = 0.0
        for j, candidate in enumerate(self.candidates):

            def op(candidate=candidate):
                return candidate.call(x, masks, training, single_path)

            main = _plus(main, _gated(op_p[j], op, out_zeros, single_path))
        skip_p = weights[kd["skip"]]
        if self.can_be_same:
            p_same = self._p_same(weights)
        else:
            p_same = 0.0 if masks.on_host else tf.constant(0.0)
        p = self.ops.bound(masks, training, p_same=p_same, single_path=single_path)
        shortcut = 0.0
        for i, kind in enumerate(self.skips):
            if kind == "none":
                continue

            def skip(kind=kind):
                branch = ops.shortcut(p, _T(x, self.in_width), kind, slot.stride)
                if branch is not None:
                    return branch.value
                return 0.0 if masks.on_host else out_zeros()

            shortcut = _plus(shortcut, _gated(skip_p[i], skip, out_zeros, single_path))
        out_mask = masks.get(slot.out_decision, slot.out_widths, slot.out_max)
        return _plus(main, shortcut) * out_mask


class _CopyOps(ops.ChannelWalker):
    """Walks a plain layer's structure and fills its Keras layers with the
    supernet's weights for it (``source``), sliced to the plain widths."""

    def __init__(self, layer: LayerPlan, source: _SupernetOps, put, put_bn):
        super().__init__(layer.facts)
        self.name = layer.name
        self.source = source
        self.put = put
        self.put_bn = put_bn

    def _get(self, name: str):
        return self.source.variables[name]

    def _kernel(self, base: str, kernel: int) -> np.ndarray:
        """The centre ``kernel`` x ``kernel`` of the (shared) kernel."""
        weight = keras.ops.convert_to_numpy(self._get(base))
        return _part(weight, (kernel, kernel, *weight.shape[2:]))

    def conv_bn(self, x, part, width, kernel, stride, act=True):
        conv, bn, _ = conv_names(self.name, part)
        self.put(conv, self._kernel(part or "conv", kernel)[:, :, :x, :width])
        self.put_bn(bn, self._get(f"{part}_bn" if part else "bn"), width)
        return width

    def depthwise_bn_act(self, x, kernel, stride):
        conv, bn, _ = depthwise_names(self.name)
        self.put(conv, self._kernel("dw", kernel)[:, :, :x, :])
        self.put_bn(bn, self._get("dw_bn"), x)
        return x

    def squeeze_excite(self, x, channels):
        if self.layer.se_filters:
            ops.squeeze_excite(self, x, channels, self.layer.se_filters)
        return x

    def conv_bias(self, x, part, width):
        kernel = keras.ops.convert_to_numpy(self._get(part))[:, :, :x, :width]
        bias = keras.ops.convert_to_numpy(self._get(f"{part}_bias"))[:width]
        self.put(f"{self.name}_{part}", kernel, bias)
        return width


class Supernet(keras.Model):
    """The whole supernet: stem, searchable slots, head; θ as separate variables.

    Call with ``arch_weights`` (decision name -> weights over its choices, e.g.
    a Gumbel-softmax sample) or without (then ``softmax(θ / temperature)``).
    Returns logits.
    """

    def __init__(
        self,
        space: FactorizedSearchSpace,
        sharing: str = "block",
        num_classes: int = 10,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-3,
        dropout_rate: float | None = None,
        **kwargs,
    ):
        super().__init__(name=kwargs.pop("name", "supernet"), **kwargs)
        self.space = space
        self.sharing = sharing
        self.decisions = space.decisions_for(sharing)
        self.slots = space.slots(sharing)
        self.num_classes = num_classes
        self.activation = _ACTIVATIONS[space.activation]
        bn = {"momentum": bn_momentum, "epsilon": bn_epsilon}
        self.theta = [
            self.add_weight(
                shape=(d.num_choices,),
                initializer="zeros",
                name="theta_" + d.name.replace("/", "_"),
            )
            for d in self.decisions
        ]
        self.temperature = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(1.0),
            trainable=False,
            name="temperature",
        )
        self.stem_kernel = self.add_weight(
            shape=(3, 3, 3, space.stem_filters), initializer=_conv_init(), name="stem"
        )
        self.stem_bn = _BatchNorm(self, "stem_bn", space.stem_filters, bn)
        self.searchable = [SearchableLayer(slot, space, bn) for slot in self.slots]
        last = self.slots[-1].out_max
        self.head_kernel = self.add_weight(
            shape=(1, 1, last, space.head_filters),
            initializer=_conv_init(),
            name="head",
        )
        self.head_bn = _BatchNorm(self, "head_bn", space.head_filters, bn)
        rate = space.dropout_rate if dropout_rate is None else dropout_rate
        self.dropout = keras.layers.Dropout(rate)
        self.classifier = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.VarianceScaling(
                1.0 / 3.0, "fan_out", "uniform"
            ),
            name="classifier",
        )

    # -- architecture parameters -------------------------------------------
    @property
    def decision_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.decisions)

    @property
    def theta_variables(self) -> list:
        return list(self.theta)

    @property
    def weight_variables(self) -> list:
        """Trainable network weights (everything trainable except θ)."""
        ids = {id(v) for v in self.theta}
        return [v for v in self.trainable_variables if id(v) not in ids]

    def arch_weights(
        self, temperature=None, generator: tf.random.Generator | None = None
    ) -> dict[str, tf.Tensor]:
        """``softmax((θ + g) / τ)`` per decision, ``g`` Gumbel noise from
        ``generator`` (none without one)."""
        tau = self.temperature if temperature is None else temperature
        result = {}
        for decision, theta in zip(self.decisions, self.theta):
            logits = tf.convert_to_tensor(theta)
            if generator is not None:
                u = generator.uniform(logits.shape, 1e-10, 1.0)
                logits = logits - tf.math.log(-tf.math.log(u))
            result[decision.name] = tf.nn.softmax(logits / tau)
        return result

    def probabilities(self) -> dict[str, np.ndarray]:
        """``softmax(θ)`` per decision (the learnt distribution, no temperature)."""
        return {
            d.name: tf.nn.softmax(tf.convert_to_tensor(t)).numpy()
            for d, t in zip(self.decisions, self.theta)
        }

    def argmax_actions(self) -> tuple[int, ...]:
        return tuple(int(np.argmax(keras.ops.convert_to_numpy(t))) for t in self.theta)

    def derive(self) -> ArchSpec:
        """The argmax architecture: ``space.decode_for(sharing, argmax θ)``."""
        return self.space.decode_for(self.sharing, self.argmax_actions())

    # -- single paths (weight-sharing evaluation, TuNAS) ----------------------------
    def path_weights(
        self,
        actions,
        uniform: Collection[str] = (),
        largest: Collection[str] = (),
    ) -> dict[str, np.ndarray]:
        """One-hot weights of ``actions`` (one per decision), as numpy: a path
        decided on the host. Decisions named in ``uniform`` weigh all their
        choices equally (TuNAS's "all ops" warm-up); those in ``largest`` take
        their largest choice (widest filters, most layers)."""
        result = {}
        for decision, action in zip(self.decisions, actions, strict=True):
            n = decision.num_choices
            if decision.name in uniform:
                result[decision.name] = np.full(n, 1.0 / n, np.float32)
                continue
            if decision.name in largest:
                action = self._largest[decision.name]
            result[decision.name] = np.eye(n, dtype=np.float32)[action]
        return result

    @functools.cached_property
    def _largest(self) -> dict[str, int]:
        """Width decision -> the index of its largest choice."""
        found = {}
        for block in range(len(self.space.skeleton)):
            choices = self.space.block_choices(block)
            for kind in BLOCK_DECISION_KINDS:
                found[decision_name(block, kind)] = int(np.argmax(choices[kind]))
        return found

    def run_path(
        self,
        images,
        path: Mapping[str, np.ndarray],
        training: bool | str = BATCH_STATS,
    ) -> tf.Tensor:
        """Logits of the host path ``path`` (``path_weights``): only its ops
        run, each candidate as its own traced function (traced on first use,
        then shared by every path through it). With ``training`` True or
        ``BATCH_STATS`` (batch statistics; False runs eagerly)."""
        if not all(isinstance(w, np.ndarray) for w in path.values()):
            raise TypeError("a host path holds numpy weights (see path_weights)")
        return self.call(images, training=training, arch_weights=path, single_path=True)

    def path_variables(self, path: Mapping[str, np.ndarray]) -> list:
        """The trainable variables a step on ``path`` trains: the stem, the
        head, the classifier and, in every slot the path keeps, the chosen
        ops (with only their chosen kernel sizes and SE ratios) and the skip
        projection where the path uses it. Nothing else gets a gradient."""
        found = [self.stem_kernel, self.stem_bn.gamma, self.stem_bn.beta]
        for slot, layer in zip(self.slots, self.searchable):
            if (
                float(path[slot.layers_decision] @ np.array(slot.exists, np.float32))
                <= 0
            ):
                continue
            kd = slot.kind_decisions
            for weight, candidate in zip(path[kd["conv_op"]], layer.candidates):
                if weight > 0:
                    found += candidate.ops.trained_variables(path)
            pool = (
                path[kd["skip"]][list(layer.skips).index("pool")]
                if "pool" in layer.skips
                else 0.0
            )
            p_same = layer._p_same(path) if layer.can_be_same else 0.0
            if pool > 0 and p_same < 1:
                found += layer.ops.trained_variables(path)
        found += [self.head_kernel, self.head_bn.gamma, self.head_bn.beta]
        return found + list(self.classifier.trainable_weights)

    # -- forward -------------------------------------------------------------
    def call(self, inputs, training=False, arch_weights=None, single_path=False):
        """``training``: True, False or ``BATCH_STATS`` (see ``_BatchNorm``).
        ``single_path``: ``arch_weights`` are one-hot (a sampled path) or
        uniform over some decisions (TuNAS's warm-up), and every branch of
        weight zero is skipped (``tf.cond``), so one trace serves every path
        and a step costs only the path's ops."""
        weights = arch_weights if arch_weights is not None else self.arch_weights()
        act = self.activation
        x = tf.nn.conv2d(inputs, self.stem_kernel, 2, "SAME")
        x = act(self.stem_bn(x, training=training))
        masks = _Masks(weights)
        for layer in self.searchable:
            x = layer.call(x, masks, training, single_path)
        x = tf.nn.conv2d(x, self.head_kernel, 1, "SAME")
        x = act(self.head_bn(x, training=training))
        x = tf.reduce_mean(x, axis=(1, 2))
        x = self.dropout(x, training=training is True)
        return self.classifier(x)

    def batch_norms(self) -> list[_BatchNorm]:
        found = [self.stem_bn, self.head_bn]
        for layer in self.searchable:
            found.extend(layer.ops.batch_norms)
            for candidate in layer.candidates:
                found.extend(candidate.ops.batch_norms)
        return found

    # -- the derived network ---------------------------------------------------
    def copy_weights_to(self, model: keras.Model, spec: ArchSpec | None = None) -> None:
        """Copies the argmax path's weights into ``model``, a plain
        ``mnas.model.builder`` build of ``spec`` (default: ``derive()``): each
        layer's op structure is walked once more, naming the Keras layers."""
        spec = spec or self.derive()
        actions = dict(zip(self.decision_names, self.argmax_actions()))
        space = self.space
        layers = {layer.name: layer for layer in model.layers}

        def put(name: str, *arrays) -> None:
            layers[name].set_weights([np.asarray(a) for a in arrays])

        def put_bn(name: str, bn, channels: int) -> None:
            put(name, *(keras.ops.convert_to_numpy(w)[:channels] for w in bn.weights))

        def np_(v):
            return keras.ops.convert_to_numpy(v)

        put("stem_conv", np_(self.stem_kernel))
        put_bn("stem_bn", self.stem_bn, space.stem_filters)
        existing = [
            (slot, layer)
            for slot, layer in zip(self.slots, self.searchable)
            if slot.exists[actions[slot.layers_decision]]
        ]
        plans = plan_layers(spec, (spec.resolution, spec.resolution))
        if len(plans) != len(existing):
            raise ValueError(
                f"spec has {len(plans)} layers, the supernet's argmax {len(existing)}"
            )
        for plan, (slot, layer) in zip(plans, existing):
            candidate = layer.candidates[actions[slot.kind_decisions["conv_op"]]]
            block = plan.block
            op_copy = _CopyOps(plan, candidate.ops, put, put_bn)
            candidate.op.structure(op_copy, plan.input_filters, plan.op_args)
            skip_copy = _CopyOps(plan, layer.ops, put, put_bn)
            ops.shortcut(skip_copy, plan.input_filters, block.skip, plan.stride)
        last = plans[-1].output_filters
        put("head_conv", np_(self.head_kernel)[:, :, :last, :])
        put_bn("head_bn", self.head_bn, space.head_filters)
        put("classifier", *(np_(w) for w in self.classifier.weights))


def build_supernet(
    space: FactorizedSearchSpace,
    sharing: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    **kwargs,
) -> Supernet:
    """A built supernet (one eager forward creates every variable up front, so
    traced steps and checkpoint restores find them all)."""
    net = Supernet(space, sharing, num_classes, **kwargs)
    net(tf.zeros((1, *input_shape)), training=False)
    return net


def theta_entropy(net: Supernet) -> float:
    """Mean entropy (nats) of ``softmax(θ)`` over decisions."""
    total = 0.0
    for p in net.probabilities().values():
        total += float(-np.sum(p * np.log(np.clip(p, 1e-12, 1.0))))
    return total / max(1, len(net.decisions))
