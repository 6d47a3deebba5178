"""Expands an ``ArchSpec`` into the concrete list of layers that get built.

Both the Keras builder and the analytic statistics walk this one plan, so the
layer names, shapes and strides they see are the same by construction.
"""

from __future__ import annotations

import dataclasses
import math

from mnas.model.ops import LayerFacts, OpArgs
from mnas.search_space import ArchSpec, BlockArgs


def identity_skip_applies(stride: int, input_filters: int, output_filters: int) -> bool:
    """Where an identity residual fits a layer: unstrided, widths unchanged.
    The one rule for the builder, the counts and the lookup-table keys."""
    return stride == 1 and input_filters == output_filters


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """One searchable layer: a block's ``repeat``-th copy, with its real shapes."""

    block_index: int
    repeat_index: int
    global_index: int
    block: BlockArgs
    input_filters: int
    output_filters: int
    stride: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]

    @property
    def name(self) -> str:
        return f"block{self.block_index}_layer{self.repeat_index}"

    @property
    def expanded_filters(self) -> int:
        """Input filters times the expansion (1 for ops without one)."""
        return self.input_filters * self.block.expand_ratio

    @property
    def facts(self) -> LayerFacts:
        """What a concrete backend of ``mnas.model.ops`` needs of this layer."""
        return LayerFacts(
            self.input_filters,
            self.output_filters,
            self.se_filters if self.block.has_se else 0,
            self.has_identity_skip,
        )

    @property
    def op_args(self) -> OpArgs[int]:
        """What the op's structure (``mnas.model.ops``) is built from."""
        return OpArgs(
            self.input_filters,
            self.output_filters,
            self.block.kernel_size,
            self.stride,
            self.block.expand_ratio,
        )

    @property
    def se_filters(self) -> int:
        """SE squeezes from the layer's input filters (official MnasNet/EfficientNet)."""
        return max(1, int(self.input_filters * self.block.se_ratio))

    @property
    def has_identity_skip(self) -> bool:
        """Official MnasNet rule: stride 1 and *declared* in == out filters.

        The declared input is the block's ``i`` for its first layer and its
        ``o`` for the repeats (the official builder sets ``input_filters =
        output_filters`` after the first); the channels that arrive must match
        too, or there is nothing to add.
        """
        first = self.repeat_index == 0
        declared = self.block.input_filters if first else self.block.output_filters
        return (
            self.block.skip == "identity"
            and declared == self.input_filters
            and identity_skip_applies(
                self.stride, self.input_filters, self.output_filters
            )
        )

    @property
    def has_pool_skip(self) -> bool:
        return self.block.skip == "pool"

    @property
    def pool_skip_projects(self) -> bool:
        return self.has_pool_skip and self.input_filters != self.output_filters


def conv_names(prefix: str, part: str) -> tuple[str, str, str]:
    """Keras names of an op's conv + BN + act piece (``mnas.model.ops`` part):
    ``block1_layer0_expand_conv``, ``..._expand_bn``, ``..._expand_act``;
    ``stem_conv``... for part ``""``. Other parts are ``{prefix}_{part}``."""
    base = f"{prefix}_{part}" if part else prefix
    return f"{base}_conv", f"{base}_bn", f"{base}_act"


def depthwise_names(prefix: str) -> tuple[str, str, str]:
    """Keras names of a layer's depthwise conv + BN + act."""
    return f"{prefix}_dwconv", f"{prefix}_dw_bn", f"{prefix}_dw_act"


def conv_output_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """'same' padding: ceil(size / stride)."""
    return (math.ceil(size[0] / stride), math.ceil(size[1] / stride))


def plan_layers(spec: ArchSpec, input_size: tuple[int, int]) -> tuple[LayerPlan, ...]:
    size = conv_output_size(input_size, 2)  # after the stem
    # Each layer consumes the channels that actually arrive, as in the official
    # builder; a block's declared input filters only decide its identity skip
    # (``has_identity_skip``). They differ only where a preset says so
    # (mnasnet-small: stem 8, first block i16, so no residual there).
    channels = spec.scaled_stem_filters()
    plans = []
    global_index = 0
    for block_index, block in enumerate(spec.scaled_blocks()):
        for repeat in range(block.num_repeat):
            first = repeat == 0
            stride = block.stride if first else 1
            out_size = conv_output_size(size, stride)
            plans.append(
                LayerPlan(
                    block_index=block_index,
                    repeat_index=repeat,
                    global_index=global_index,
                    block=block,
                    input_filters=channels,
                    output_filters=block.output_filters,
                    stride=stride,
                    input_size=size,
                    output_size=out_size,
                )
            )
            size = out_size
            channels = block.output_filters
            global_index += 1
    return tuple(plans)
