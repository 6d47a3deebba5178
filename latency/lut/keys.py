"""What a latency lookup table is keyed by: one distinct layer configuration.

A key holds everything a layer's runtime depends on and nothing else (no
block index, no name), so two layers that convert to the same ops at the
same shapes share one entry. ``layer_key`` is the one place that decides
what counts as "the same layer" (an identity skip that cannot apply is no
skip; a pooling skip at stride 1 without a channel change is an identity
add), and every other function here goes through it.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterator

from mnas.model.plan import (
    LayerPlan,
    conv_output_size,
    identity_skip_applies,
    plan_layers,
)
from mnas.search_space import ArchSpec, BlockArgs
from mnas.search_space.block_args import conv_op_expands
from mnas.search_space.space import FactorizedSearchSpace, LayerSlot

KINDS = ("stem", "layer", "head", "classifier")
SKIPS = ("none", "add", "pool")
DEFAULT_NUM_CLASSES = 1000


@dataclasses.dataclass(frozen=True, order=True)
class LayerKey:
    """One distinct layer configuration at its input shape.

    ``skip`` is canonical: ``none``, ``add`` (identity residual) or ``pool``
    (average pooling when strided, 1x1 projection when the channels change,
    then add). ``se_filters`` is 0 without squeeze-excite. For ``classifier``,
    ``out_channels`` is the number of classes (global pooling + dense + softmax).
    """

    kind: str
    in_channels: int
    out_channels: int
    size: int
    stride: int = 1
    kernel: int = 1
    conv_op: str = ""
    expand_ratio: int = 1
    se_filters: int = 0
    skip: str = "none"
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.skip not in SKIPS:
            raise ValueError(f"skip must be one of {SKIPS}, got {self.skip!r}")

    @property
    def expanded_channels(self) -> int:
        return self.in_channels * self.expand_ratio

    @property
    def output_size(self) -> int:
        return conv_output_size((self.size, self.size), self.stride)[0]

    def to_string(self) -> str:
        """A stable, readable text form: the table file's key."""
        return self._text

    @functools.cached_property
    def _text(self) -> str:
        shape = f"{self.size}x{self.size}x{self.in_channels}"
        if self.kind == "layer":
            op = self.conv_op + (
                f"_e{self.expand_ratio}" if conv_op_expands(self.conv_op) else ""
            )
            return (
                f"layer:{op}_k{self.kernel}_s{self.stride}_se{self.se_filters}"
                f"_{self.skip}:{shape}->{self.out_channels}:{self.activation}"
            )
        if self.kind == "stem":
            return (
                f"stem:k{self.kernel}_s{self.stride}:{shape}->{self.out_channels}"
                f":{self.activation}"
            )
        if self.kind == "head":
            return f"head:k1_s1:{shape}->{self.out_channels}:{self.activation}"
        return f"classifier:{shape}->{self.out_channels}"

    def __str__(self) -> str:
        return self.to_string()


def layer_key(
    block: BlockArgs,
    input_channels: int,
    output_channels: int,
    stride: int,
    size: int,
    activation: str,
    se_filters: int | None = None,
    identity_skip: bool | None = None,
) -> LayerKey:
    """The canonical key of one searchable layer (see the module docstring).

    ``identity_skip``: whether an identity-skip layer adds its input, as the
    layer plan decided (``LayerPlan.has_identity_skip`` also compares the
    block's declared filters, as the official MnasNet does); from the shapes
    when None (the search space, whose blocks always declare what arrives).
    """
    changes_shape = not identity_skip_applies(stride, input_channels, output_channels)
    if block.skip == "identity":
        adds = not changes_shape if identity_skip is None else identity_skip
        skip = "add" if adds else "none"
    elif block.skip == "pool":
        skip = "pool" if changes_shape else "add"
    else:
        skip = "none"
    if se_filters is None:
        se_filters = max(1, int(input_channels * block.se_ratio))
    return LayerKey(
        kind="layer",
        in_channels=input_channels,
        out_channels=output_channels,
        size=size,
        stride=stride,
        kernel=block.kernel_size,
        conv_op=block.conv_op,
        expand_ratio=block.expand_ratio,  # BlockArgs: 1 for ops without expansion
        se_filters=se_filters if block.has_se else 0,
        skip=skip,
        activation=activation,
    )


def key_of_plan(layer: LayerPlan, activation: str) -> LayerKey:
    if layer.input_size[0] != layer.input_size[1]:
        raise ValueError(
            f"{layer.name}: lookup tables hold square inputs, got {layer.input_size}"
        )
    return layer_key(
        layer.block,
        layer.input_filters,
        layer.output_filters,
        layer.stride,
        layer.input_size[0],
        activation,
        se_filters=layer.se_filters,
        identity_skip=layer.has_identity_skip,
    )


def stem_key(stem_filters: int, resolution: int, activation: str) -> LayerKey:
    return LayerKey(
        "stem", 3, stem_filters, resolution, stride=2, kernel=3, activation=activation
    )


def head_key(
    in_channels: int, head_filters: int, size: int, activation: str
) -> LayerKey:
    return LayerKey("head", in_channels, head_filters, size, activation=activation)


def classifier_key(head_filters: int, size: int, num_classes: int) -> LayerKey:
    return LayerKey("classifier", head_filters, num_classes, size)


def keys_for_spec(
    spec: ArchSpec,
    resolution: int | None = None,
    num_classes: int = DEFAULT_NUM_CLASSES,
) -> tuple[LayerKey, ...]:
    """The keys whose latencies sum to ``spec``'s (stem, layers, head, classifier)."""
    resolution = spec.resolution if resolution is None else resolution
    layers = plan_layers(spec, (resolution, resolution))
    keys = [stem_key(spec.scaled_stem_filters(), resolution, spec.activation)]
    keys.extend(key_of_plan(layer, spec.activation) for layer in layers)
    if layers:
        last_channels, last_size = layers[-1].output_filters, layers[-1].output_size
    else:
        last_channels = spec.scaled_stem_filters()
        last_size = conv_output_size((resolution, resolution), 2)
    head = spec.scaled_head_filters()
    keys.append(head_key(last_channels, head, last_size[0], spec.activation))
    keys.append(classifier_key(head, last_size[0], num_classes))
    return tuple(keys)


# -- the whole space ---------------------------------------------------------------


def slot_block_args(
    space: FactorizedSearchSpace, block_index: int
) -> Iterator[tuple[int, int, int, int, BlockArgs]]:
    """(op, kernel, se, skip) choice indices of block ``block_index`` and the
    BlockArgs they give (shape fields are placeholders: ``layer_key`` takes
    shapes separately)."""
    for (o, op), (k, kernel), (s, se), (p, skip) in itertools.product(
        enumerate(space.block_conv_ops(block_index)),
        enumerate(space.kernel_sizes),
        enumerate(space.se_ratios),
        enumerate(space.skips),
    ):
        block = BlockArgs(
            num_repeat=1,
            kernel_size=kernel,
            stride=1,
            expand_ratio=op.expand_ratio,
            input_filters=8,
            output_filters=8,
            se_ratio=se,
            conv_op=op.conv_op,  # type: ignore[arg-type]
            skip=skip,  # type: ignore[arg-type]
        )
        yield o, k, s, p, block


def space_keys(
    space: FactorizedSearchSpace, num_classes: int = DEFAULT_NUM_CLASSES
) -> tuple[LayerKey, ...]:
    """Every distinct key any architecture of ``space`` can need, sorted."""
    keys: set[LayerKey] = {
        stem_key(space.stem_filters, space.resolution, space.activation)
    }
    slots = space.slots()
    for slot in slots:
        for *_, block in slot_block_args(space, slot.block):
            for c_in, c_out in slot.width_pairs:
                keys.add(slot_key(space, slot, block, c_in, c_out))
    final_size = slots[-1].output_size
    for c_in in slots[-1].out_widths:
        keys.add(head_key(c_in, space.head_filters, final_size, space.activation))
    keys.add(classifier_key(space.head_filters, final_size, num_classes))
    return tuple(sorted(keys))


def slot_key(
    space: FactorizedSearchSpace,
    slot: LayerSlot,
    block: BlockArgs,
    c_in: int,
    c_out: int,
) -> LayerKey:
    """The key of ``block``'s choices in ``slot`` at widths ``c_in -> c_out``."""
    return layer_key(block, c_in, c_out, slot.stride, slot.input_size, space.activation)
