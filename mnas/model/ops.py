"""Each layer op written once, against a small interface of primitives.

An op's structure (which convs, in which order, where squeeze-excite and the
residual go) is a plain function of ``Primitives``; a backend supplies the
primitives:

* ``mnas.model.builder``: Keras layers with the builder's deterministic names;
* ``mnas.model.cost``: parameter and multiply-add counts (tensors are shapes);
* ``mnas.model.supernet``: mixed kernels, masked widths, the SE-gate mix, and
  the copy of a one-hot path's weights onto a plain model;
* ``mnas.latency.lut.graph``: a raw TF graph as the TFLite converter sees the
  Keras model (conv + bias for conv + batch norm, activations after);
* ``mnas.model.official.names``: the official checkpoint's layer order.

So a new op type is one ``register_op`` call with its structure: it then
builds, counts, searches and times like the built-in ones (see
``docs/adding_an_op.md``).

Primitives take a ``part``: the piece of the layer they make (``""`` for an
op's main conv, ``"expand"``, ``"project"``, ``"skip"``, ``"se_reduce"``...).
Backends derive names from it (Keras layer ``block2_layer0_expand_conv``,
supernet variable ``expand``), so an op never spells a backend's names.
Widths (``OpArgs.c_in``, ``OpArgs.c_out``) are a backend's own values: plain
channel counts, or the supernet's masked widths; ``c_in * e`` works on both.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mnas.search_space.block_args import (
    conv_op_names,
    register_conv_op,
    unregister_conv_op,
)

T = TypeVar("T")  # a backend's tensor
W = TypeVar("W")  # a backend's width (a channel count, or a masked width)


@dataclasses.dataclass(frozen=True)
class OpArgs(Generic[W]):
    """What an op's structure is given besides its input.

    ``kernel`` is the layer's (searchable) kernel size, or a backend's stand-in
    for it (the supernet's mixed kernel): pass it on as is, or use a literal
    size for a fixed conv (1 for pointwise)."""

    c_in: W
    c_out: W
    kernel: Any
    stride: int
    expand_ratio: int = 1


class Primitives(abc.ABC, Generic[T, W]):
    """The operations an op is written against (see the module docstring)."""

    @abc.abstractmethod
    def conv_bn(
        self, x: T, part: str, width: W, kernel: Any, stride: int, act: bool = True
    ) -> T:
        """Conv (no bias) to ``width`` channels, batch norm, activation if ``act``."""

    @abc.abstractmethod
    def depthwise_bn_act(self, x: T, kernel: Any, stride: int) -> T:
        """Depthwise conv, batch norm, activation (one per layer, part ``dw``)."""

    @abc.abstractmethod
    def squeeze_excite(self, x: T, channels: W) -> T:
        """The layer's squeeze-excite on ``x`` (``channels`` wide), or ``x``
        without one; concrete backends run ``squeeze_excite`` below."""

    # -- the pieces of squeeze-excite ------------------------------------------------
    @abc.abstractmethod
    def global_pool(self, x: T, part: str) -> T:
        """Spatial mean, keeping a 1x1 spatial shape."""

    @abc.abstractmethod
    def conv_bias(self, x: T, part: str, width: W) -> T:
        """1x1 conv with bias to ``width`` channels."""

    @abc.abstractmethod
    def activation(self, x: T, part: str) -> T:
        """The model's activation."""

    @abc.abstractmethod
    def sigmoid(self, x: T, part: str) -> T: ...

    @abc.abstractmethod
    def multiply(self, x: T, gate: T, part: str) -> T:
        """``x * gate`` (the gate broadcast over space)."""

    # -- the pieces of the residual --------------------------------------------------
    @abc.abstractmethod
    def identity_shortcut(self, x: T) -> T | None:
        """``x`` where an identity residual applies to this layer, else None."""

    @abc.abstractmethod
    def matched_shortcut(self, x: T) -> T:
        """``x`` with the layer's output channels: itself when they agree, else
        projected by ``conv_bn(x, "skip", c_out, 1, 1, act=False)``."""

    @abc.abstractmethod
    def avg_pool(self, x: T, stride: int, part: str) -> T:
        """Average pooling, window = stride, 'same' padding."""

    @abc.abstractmethod
    def add(self, y: T, shortcut: T) -> T:
        """The residual sum (Keras adds drop-connect on ``y``)."""


@dataclasses.dataclass(frozen=True)
class LayerFacts:
    """What a backend of one concrete layer knows beyond ``OpArgs``: its
    widths, its SE width (0: no squeeze-excite), whether an identity skip
    applies. The defaults suit the stem and the head."""

    c_in: int = 0
    c_out: int = 0
    se_filters: int = 0
    identity_skip: bool = False


NO_LAYER = LayerFacts()  # the stem's and the head's: no SE, no residual


class ConcretePrimitives(Primitives[T, int]):
    """A backend for one concrete layer: fixed widths, one SE width, a known
    skip. Keras, counting, the table graph and the weight copy share this."""

    def __init__(self, layer: LayerFacts = NO_LAYER) -> None:
        self.layer = layer

    def squeeze_excite(self, x: T, channels: int) -> T:
        if not self.layer.se_filters:
            return x
        return squeeze_excite(self, x, channels, self.layer.se_filters)

    def identity_shortcut(self, x: T) -> T | None:
        return x if self.layer.identity_skip else None

    def matched_shortcut(self, x: T) -> T:
        if self.layer.c_in == self.layer.c_out:
            return x
        return self.conv_bn(x, "skip", self.layer.c_out, 1, 1, act=False)


class ChannelWalker(ConcretePrimitives[int]):
    """Walks a layer's structure without computing: a tensor is its channel
    count. Subclasses act on the weighted primitives (the weight copy, the
    official layer order)."""

    def conv_bn(self, x, part, width, kernel, stride, act=True):
        return width

    def depthwise_bn_act(self, x, kernel, stride):
        return x

    def global_pool(self, x, part):
        return x

    def conv_bias(self, x, part, width):
        return width

    def activation(self, x, part):
        return x

    def sigmoid(self, x, part):
        return x

    def multiply(self, x, gate, part):
        return x

    def avg_pool(self, x, stride, part):
        return x

    def add(self, y, shortcut):
        return y


# -- structures written once ------------------------------------------------------------


def se_gate(p: Primitives[T, W], x: T, channels: W, squeeze: W) -> T:
    """Squeeze-excite's gate: pool, reduce to ``squeeze``, act, expand, sigmoid."""
    s = p.global_pool(x, "se_squeeze")
    s = p.conv_bias(s, "se_reduce", squeeze)
    s = p.activation(s, "se_act")
    s = p.conv_bias(s, "se_expand", channels)
    return p.sigmoid(s, "se_gate")


def squeeze_excite(p: Primitives[T, W], x: T, channels: W, squeeze: W) -> T:
    return p.multiply(x, se_gate(p, x, channels, squeeze), "se_excite")


def shortcut(p: Primitives[T, W], x: T, skip: str, stride: int) -> T | None:
    """The residual branch of ``skip`` (a block's ``identity``, ``pool`` or
    ``none``): the identity where it applies; average pooling (when strided)
    then a projection when the channels change; or nothing."""
    if skip == "identity":
        return p.identity_shortcut(x)
    if skip == "pool":
        if stride > 1:
            x = p.avg_pool(x, stride, "skip_pool")
        return p.matched_shortcut(x)
    return None


def apply_layer(
    p: Primitives[T, W], x: T, conv_op: str, args: OpArgs[W], skip: str
) -> T:
    """One searchable layer: the op, then its residual (if any)."""
    y = get_op(conv_op).structure(p, x, args)
    branch = shortcut(p, x, skip, args.stride)
    return y if branch is None else p.add(y, branch)


# -- the op types -------------------------------------------------------------------------

Structure = Callable[[Primitives, Any, OpArgs], Any]


@dataclasses.dataclass(frozen=True)
class OpType:
    """A conv op: its name (``BlockArgs.conv_op``, its block-string token),
    whether it takes the expansion ratio, and its structure. ``official`` ops
    exist in the official MnasNet checkpoints.

    ``weight_family``: in the supernet, ops of one family share the weights of
    equally named parts (TuNAS): one tensor per part at the largest shape any
    member asks for, each using its centre (kernel sizes) and first channels
    (widths, expansions, SE ratios). Empty: a family of its own."""

    name: str
    expands: bool
    structure: Structure
    official: bool = False
    weight_family: str = ""

    @property
    def family(self) -> str:
        return self.weight_family or self.name


def _conv(p: Primitives, x, a: OpArgs):
    """KxK conv, BN, act, [SE]."""
    y = p.conv_bn(x, "", a.c_out, a.kernel, a.stride)
    return p.squeeze_excite(y, a.c_out)


def _dsconv(p: Primitives, x, a: OpArgs):
    """MobileNetV1: depthwise KxK, BN, act, [SE], pointwise 1x1, BN, act."""
    y = p.depthwise_bn_act(x, a.kernel, a.stride)
    y = p.squeeze_excite(y, a.c_in)
    return p.conv_bn(y, "project", a.c_out, 1, 1)


def _mbconv(p: Primitives, x, a: OpArgs):
    """MobileNetV2/MnasNet: [expand 1x1], depthwise KxK, [SE], linear 1x1."""
    inner = a.c_in * a.expand_ratio
    y = x if a.expand_ratio == 1 else p.conv_bn(x, "expand", inner, 1, 1)
    y = p.depthwise_bn_act(y, a.kernel, a.stride)
    y = p.squeeze_excite(y, inner)
    return p.conv_bn(y, "project", a.c_out, 1, 1, act=False)


_BUILTIN = (
    # MBConv at every expansion and the depthwise-separable conv share their
    # depthwise, projection and SE weights in the supernet (MBConv e1 and
    # dsconv differ only in the projection's activation and batch norm).
    OpType("mbconv", True, _mbconv, official=True, weight_family="depthwise"),
    OpType("conv", False, _conv),
    OpType("dsconv", False, _dsconv, weight_family="depthwise"),
)
_REGISTRY: dict[str, OpType] = {op.name: op for op in _BUILTIN}


def op_names() -> tuple[str, ...]:
    """The registered ops, built-in ones first."""
    return tuple(_REGISTRY)


def get_op(name: str) -> OpType:
    if name not in _REGISTRY:
        raise ValueError(
            f"conv_op must be one of {tuple(_REGISTRY)}, got {name!r} "
            "(register it with mnas.model.ops.register_op)"
        )
    return _REGISTRY[name]


def register_op(op: OpType) -> None:
    """Adds a conv op everywhere: blocks and block strings accept its name;
    the builder, the cost counts, the supernet (when a space's ``conv_ops``
    lists it) and the lookup-table graphs build it from ``op.structure``."""
    if op.name in conv_op_names():
        raise ValueError(f"conv op {op.name!r} is already registered")
    register_conv_op(op.name, op.expands)
    _REGISTRY[op.name] = op


def unregister_op(name: str) -> None:
    """Undoes ``register_op`` (tests); built-in ops stay."""
    unregister_conv_op(name)  # refuses built-in and unknown names
    del _REGISTRY[name]
