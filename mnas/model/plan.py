"""Expands an ``ArchSpec`` into the concrete list of layers that get built.

Both the Keras builder and the analytic statistics walk this one plan, so the
layer names, shapes and strides they see are the same by construction.
"""

from __future__ import annotations

import dataclasses
import math

from mnas.search_space import ArchSpec, BlockArgs


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
        if self.block.conv_op == "mbconv":
            return self.input_filters * self.block.expand_ratio
        return self.input_filters

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
            and self.stride == 1
            and declared == self.input_filters == self.output_filters
        )

    @property
    def has_pool_skip(self) -> bool:
        return self.block.skip == "pool"

    @property
    def pool_skip_projects(self) -> bool:
        return self.has_pool_skip and self.input_filters != self.output_filters


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
