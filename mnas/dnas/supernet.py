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
* ``kernel``: each candidate keeps one kernel per size and convolves once with
  the mix ``Σ_k m_k · pad(W_k)`` (convolution is linear in its kernel, and
  "same" padding centres a zero-padded smaller kernel exactly), which halves
  the compute of separate per-kernel candidates.
* ``se_ratio``: inside each candidate the gate becomes ``m_0 + Σ_r m_r · SE_r(x)``.
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
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from mnas.search_space import ArchSpec, FactorizedSearchSpace
from mnas.search_space.space import LayerSlot


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
    return tf.linalg.matvec(tf.constant(table), tf.cast(probs, tf.float32), True)


def _scaled_width(width: int, scale: float) -> int:
    if scale >= 1:
        return int(width * scale)
    return max(1, int(width * scale))


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

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        # One fused op (and one gradient op) instead of a dozen small ones:
        # graph size, not FLOPs, bounds the supernet's trace and step times.
        if training:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x,
                self.gamma,
                self.beta,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                is_training=True,
                exponential_avg_factor=1.0 - self.momentum,
            )
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


_ACTIVATIONS = {"relu": tf.nn.relu, "relu6": tf.nn.relu6, "swish": tf.nn.silu}


class _Masks:
    """Width masks computed once per forward pass and shared by every user."""

    def __init__(self, weights: Mapping[str, tf.Tensor]):
        self.weights = weights
        self._cache: dict = {}

    def get(self, decision, widths, channels, scale: float = 1) -> tf.Tensor:
        key = (decision, widths, channels, scale)
        if key not in self._cache:
            probs = None if decision is None else self.weights[decision]
            self._cache[key] = _width_mask(probs, widths, channels, scale)
        return self._cache[key]


class _Candidate(keras.layers.Layer):
    """One conv op of a slot at maximal widths, with mixed kernel and SE."""

    def __init__(
        self,
        slot: LayerSlot,
        conv_op: str,
        expand_ratio: int,
        space: FactorizedSearchSpace,
        bn: dict,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.slot_spec = slot
        self.act = _ACTIVATIONS[space.activation]
        self.conv_op = conv_op
        self.expand_ratio = expand_ratio
        self.kernel_sizes = tuple(space.kernel_sizes)
        self.se_ratios = tuple(space.se_ratios)
        self.k_max = max(self.kernel_sizes)
        in_max, out_max = slot.in_max, slot.out_max
        init = _conv_init()
        if conv_op == "conv":
            self.inner = out_max
            self.kernels = [
                self.add_weight(
                    shape=(k, k, in_max, out_max), initializer=init, name=f"conv_k{k}"
                )
                for k in self.kernel_sizes
            ]
            self.bn = _BatchNorm(self, "bn", out_max, bn)
        else:
            self.inner = in_max * (expand_ratio if conv_op == "mbconv" else 1)
            if conv_op == "mbconv" and expand_ratio != 1:
                self.expand = self.add_weight(
                    shape=(1, 1, in_max, self.inner), initializer=init, name="expand"
                )
                self.expand_bn = _BatchNorm(self, "expand_bn", self.inner, bn)
            self.kernels = [
                self.add_weight(
                    shape=(k, k, self.inner, 1), initializer=init, name=f"dw_k{k}"
                )
                for k in self.kernel_sizes
            ]
            self.dw_bn = _BatchNorm(self, "dw_bn", self.inner, bn)
            self.project = self.add_weight(
                shape=(1, 1, self.inner, out_max), initializer=init, name="project"
            )
            self.project_bn = _BatchNorm(self, "project_bn", out_max, bn)
        self.se = []
        for ratio in self.se_ratios:
            if ratio <= 0:
                self.se.append(None)
                continue
            squeeze = _scaled_width(in_max, ratio)
            self.se.append(
                (
                    self.add_weight(
                        shape=(1, 1, self.inner, squeeze),
                        initializer=init,
                        name=f"se{ratio}_reduce",
                    ),
                    self.add_weight(
                        shape=(squeeze,), initializer="zeros", name=f"se{ratio}_rb"
                    ),
                    self.add_weight(
                        shape=(1, 1, squeeze, self.inner),
                        initializer=init,
                        name=f"se{ratio}_expand",
                    ),
                    self.add_weight(
                        shape=(self.inner,), initializer="zeros", name=f"se{ratio}_eb"
                    ),
                )
            )
        self.built = True

    def _mixed_kernel(self, probs: tf.Tensor) -> tf.Tensor:
        total = 0.0
        for i, (k, kernel) in enumerate(zip(self.kernel_sizes, self.kernels)):
            pad = (self.k_max - k) // 2
            padded = tf.pad(kernel, [[pad, pad], [pad, pad], [0, 0], [0, 0]])
            total = total + probs[i] * padded
        return total

    def _squeeze_excite(self, x, probs, masks, act) -> tf.Tensor:
        gate = 0.0
        slot = self.slot_spec
        for i, (ratio, weights) in enumerate(zip(self.se_ratios, self.se)):
            if weights is None:
                gate = gate + probs[i]
                continue
            reduce_k, reduce_b, expand_k, expand_b = weights
            s = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
            s = act(tf.nn.conv2d(s, reduce_k, 1, "SAME") + reduce_b)
            s = s * masks.get(slot.in_decision, slot.in_widths, s.shape[-1], ratio)
            s = tf.sigmoid(tf.nn.conv2d(s, expand_k, 1, "SAME") + expand_b)
            gate = gate + probs[i] * s
        return x * gate

    def call(self, x, masks, training=False):
        act = self.act
        slot = self.slot_spec
        kd = slot.kind_decisions
        weights = masks.weights
        out_mask = masks.get(slot.out_decision, slot.out_widths, slot.out_max)
        kernel = self._mixed_kernel(weights[kd["kernel"]])
        stride = slot.stride
        if self.conv_op == "conv":
            y = tf.nn.conv2d(x, kernel, stride, "SAME")
            y = act(self.bn(y, training=training)) * out_mask
            return self._squeeze_excite(y, weights[kd["se_ratio"]], masks, act)
        scale = self.expand_ratio if self.conv_op == "mbconv" else 1
        inner_mask = masks.get(slot.in_decision, slot.in_widths, self.inner, scale)
        y = x
        if self.conv_op == "mbconv" and self.expand_ratio != 1:
            y = tf.nn.conv2d(y, self.expand, 1, "SAME")
            y = act(self.expand_bn(y, training=training)) * inner_mask
        y = tf.nn.depthwise_conv2d(y, kernel, (1, stride, stride, 1), "SAME")
        y = act(self.dw_bn(y, training=training)) * inner_mask
        y = self._squeeze_excite(y, weights[kd["se_ratio"]], masks, act)
        y = tf.nn.conv2d(y, self.project, 1, "SAME")
        y = self.project_bn(y, training=training)
        return act(y) if self.conv_op == "dsconv" else y


class SearchableLayer(keras.layers.Layer):
    """A layer slot: all candidate ops, the skip mix and the existence mix."""

    def __init__(self, slot: LayerSlot, space: FactorizedSearchSpace, bn: dict, **kw):
        super().__init__(name=f"block{slot.block}_slot{slot.slot}", **kw)
        self.slot_spec = slot
        self.skips = tuple(space.skips)
        self.candidates = [
            _Candidate(slot, op.conv_op, op.expand_ratio, space, bn, name=op.label)
            for op in space.conv_ops
        ]
        pairs = [(i, o) for i in slot.in_widths for o in slot.out_widths]
        self.can_be_same = any(i == o for i, o in pairs)
        self.can_differ = any(i != o for i, o in pairs)
        if "pool" in self.skips and self.can_differ:
            self.skip_conv = self.add_weight(
                shape=(1, 1, slot.in_max, slot.out_max),
                initializer=_conv_init(),
                name="skip_conv",
            )
            self.skip_bn = _BatchNorm(self, "skip_bn", slot.out_max, bn)
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
        if slot.in_decision is None:
            in_p = tf.ones((1,), tf.float32)
        elif slot.in_decision == slot.out_decision:
            return tf.constant(1.0)  # a later slot of the block: same width mix
        else:
            in_p = weights[slot.in_decision]
        return tf.tensordot(in_p, tf.linalg.matvec(tf.constant(table), out_p), 1)

    def call(self, x, masks, training=False):
        weights = masks.weights
        slot = self.slot_spec
        kd = slot.kind_decisions
        op_p = weights[kd["conv_op"]]
        main = 0.0
        for j, candidate in enumerate(self.candidates):
            main = main + op_p[j] * candidate.call(x, masks, training=training)
        skip_p = weights[kd["skip"]]
        p_same = self._p_same(weights) if self.can_be_same else tf.constant(0.0)
        shortcut = 0.0
        for i, kind in enumerate(self.skips):
            if kind == "identity" and slot.stride == 1 and self.can_be_same:
                shortcut = shortcut + skip_p[i] * p_same * _fit_channels(
                    x, slot.out_max
                )
            elif kind == "pool":
                pooled = x
                if slot.stride > 1:
                    pooled = tf.nn.avg_pool2d(x, slot.stride, slot.stride, "SAME")
                branch = 0.0
                if self.can_be_same:
                    branch = p_same * _fit_channels(pooled, slot.out_max)
                if self.can_differ:
                    projected = tf.nn.conv2d(pooled, self.skip_conv, 1, "SAME")
                    projected = self.skip_bn(projected, training=training)
                    branch = branch + (1.0 - p_same) * projected
                shortcut = shortcut + skip_p[i] * branch
        out_mask = masks.get(slot.out_decision, slot.out_widths, slot.out_max)
        y = (main + shortcut) * out_mask
        if all(slot.exists):
            return y
        exists = tf.constant([float(e) for e in slot.exists])
        p_exist = tf.tensordot(weights[slot.layers_decision], exists, 1)
        return p_exist * y + (1.0 - p_exist) * x


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

    # -- forward -------------------------------------------------------------
    def call(self, inputs, training=False, arch_weights=None):
        weights = arch_weights if arch_weights is not None else self.arch_weights()
        act = self.activation
        x = tf.nn.conv2d(inputs, self.stem_kernel, 2, "SAME")
        x = act(self.stem_bn(x, training=training))
        masks = _Masks(weights)
        for layer in self.searchable:
            x = layer.call(x, masks, training=training)
        x = tf.nn.conv2d(x, self.head_kernel, 1, "SAME")
        x = act(self.head_bn(x, training=training))
        x = tf.reduce_mean(x, axis=(1, 2))
        x = self.dropout(x, training=training)
        return self.classifier(x)

    def batch_norms(self) -> list[_BatchNorm]:
        found = [self.stem_bn, self.head_bn]
        for layer in self.searchable:
            if hasattr(layer, "skip_bn"):
                found.append(layer.skip_bn)
            for candidate in layer.candidates:
                for attr in ("bn", "expand_bn", "dw_bn", "project_bn"):
                    if hasattr(candidate, attr):
                        found.append(getattr(candidate, attr))
        return found

    # -- the derived network ---------------------------------------------------
    def copy_weights_to(self, model: keras.Model, spec: ArchSpec | None = None) -> None:
        """Copies the argmax path's weights into ``model``, a plain
        ``mnas.model.builder`` build of ``spec`` (default: ``derive()``)."""
        from mnas.model.plan import plan_layers

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
            kd = slot.kind_decisions
            cand = layer.candidates[actions[kd["conv_op"]]]
            k_index = actions[kd["kernel"]]
            se_index = actions[kd["se_ratio"]]
            w_in, w_out, n = plan.input_filters, plan.output_filters, plan.name
            kernel = np_(cand.kernels[k_index])
            if cand.conv_op == "conv":
                put(f"{n}_conv", kernel[:, :, :w_in, :w_out])
                put_bn(f"{n}_bn", cand.bn, w_out)
                inner = w_out
            else:
                inner = plan.expanded_filters
                if cand.conv_op == "mbconv" and cand.expand_ratio != 1:
                    put(f"{n}_expand_conv", np_(cand.expand)[:, :, :w_in, :inner])
                    put_bn(f"{n}_expand_bn", cand.expand_bn, inner)
                put(f"{n}_dwconv", kernel[:, :, :inner, :])
                put_bn(f"{n}_dw_bn", cand.dw_bn, inner)
                put(f"{n}_project_conv", np_(cand.project)[:, :, :inner, :w_out])
                put_bn(f"{n}_project_bn", cand.project_bn, w_out)
            se = cand.se[se_index]
            if se is not None:
                squeeze = plan.se_filters
                rk, rb, ek, eb = (np_(v) for v in se)
                put(f"{n}_se_reduce", rk[:, :, :inner, :squeeze], rb[:squeeze])
                put(f"{n}_se_expand", ek[:, :, :squeeze, :inner], eb[:inner])
            if plan.pool_skip_projects:
                put(f"{n}_skip_conv", np_(layer.skip_conv)[:, :, :w_in, :w_out])
                put_bn(f"{n}_skip_bn", layer.skip_bn, w_out)
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
