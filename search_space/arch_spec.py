"""The immutable architecture specification shared by every layer of mnas.

An ``ArchSpec`` is everything the model builder needs and nothing more: the
blocks (as ``BlockArgs``) plus global parameters. Width and depth multipliers
are *recorded* and applied once by ``scaled_blocks()`` so that presets stay in
their published, unscaled form.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Literal

from mnas.search_space.block_args import (
    BlockArgs,
    decode_block_strings,
    encode_block_strings,
)
from mnas.search_space.errors import SpecError

Activation = Literal["relu", "relu6", "swish"]
HeadScaling = Literal["fixed", "scaled", "scaled_if_wider"]
ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "swish")
HEAD_SCALINGS: tuple[str, ...] = ("fixed", "scaled", "scaled_if_wider")

SPEC_FORMAT_VERSION = 1


def round_filters(
    filters: int | float, multiplier: float = 1.0, divisor: int = 8
) -> int:
    """Scales ``filters`` and rounds to the nearest multiple of ``divisor``.

    The result is at least ``divisor`` and never loses more than 10%: if it
    would, one more ``divisor`` is added. ``ArchSpec`` applies it only with a
    width multiplier (see ``ArchSpec.scale_filters``).
    """
    scaled = filters * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, multiplier: float = 1.0) -> int:
    """EfficientNet depth scaling: ``ceil(multiplier * repeats)``."""
    if multiplier == 1.0:
        return int(repeats)
    return int(math.ceil(multiplier * repeats))


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """A whole network: stem conv 3x3/2, blocks, head conv 1x1, pool, classifier."""

    blocks: tuple[BlockArgs, ...]
    stem_filters: int = 32
    head_filters: int = 1280
    head_scaling: HeadScaling = "fixed"
    activation: Activation = "relu"
    dropout_rate: float = 0.2
    drop_connect_rate: float = 0.0
    width_multiplier: float = 1.0
    depth_multiplier: float = 1.0
    resolution: int = 224
    depth_divisor: int = 8
    batch_norm_momentum: float = 0.99
    batch_norm_epsilon: float = 1e-3
    name: str = "custom"

    def __post_init__(self) -> None:
        if not isinstance(self.blocks, tuple):
            object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks:
            raise SpecError("an architecture needs at least one block")
        for block in self.blocks:
            if not isinstance(block, BlockArgs):
                raise SpecError(f"blocks must be BlockArgs, got {type(block).__name__}")
        for name in ("stem_filters", "head_filters", "resolution", "depth_divisor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"{name} must be a positive integer, got {value!r}")
        for name in ("width_multiplier", "depth_multiplier"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise SpecError(f"{name} must be > 0, got {value!r}")
        for name in ("dropout_rate", "drop_connect_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise SpecError(f"{name} must be in [0, 1), got {value!r}")
        if self.activation not in ACTIVATIONS:
            raise SpecError(
                f"activation must be one of {ACTIVATIONS}, got {self.activation!r}"
            )
        if self.head_scaling not in HEAD_SCALINGS:
            raise SpecError(
                f"head_scaling must be one of {HEAD_SCALINGS}, got {self.head_scaling!r}"
            )
        for index, (prev, block) in enumerate(zip(self.blocks, self.blocks[1:]), 1):
            if block.input_filters != prev.output_filters:
                raise SpecError(
                    f"block {index} input filters ({block.input_filters}) differ from "
                    f"block {index - 1} output filters ({prev.output_filters})"
                )

    # -- derived views ---------------------------------------------------------
    @property
    def block_strings(self) -> tuple[str, ...]:
        return encode_block_strings(self.blocks)

    def scale_filters(self, filters: int) -> int:
        """A declared filter count as built.

        As the official ``round_filters``: unchanged without a width multiplier
        (so mnasnet-d1's ``o36`` stays 36 and its checkpoints load), scaled and
        rounded to the divisor with one.
        """
        if self.width_multiplier == 1.0:
            return filters
        return round_filters(filters, self.width_multiplier, self.depth_divisor)

    def scaled_stem_filters(self) -> int:
        return self.scale_filters(self.stem_filters)

    def scaled_head_filters(self) -> int:
        if self.head_scaling == "scaled" or (
            self.head_scaling == "scaled_if_wider" and self.width_multiplier > 1.0
        ):
            return self.scale_filters(self.head_filters)
        return self.head_filters

    def scaled_blocks(self) -> tuple[BlockArgs, ...]:
        """Blocks with width and depth multipliers applied (the built network)."""
        return tuple(
            block.replace(
                input_filters=self.scale_filters(block.input_filters),
                output_filters=self.scale_filters(block.output_filters),
                num_repeat=round_repeats(block.num_repeat, self.depth_multiplier),
            )
            for block in self.blocks
        )

    def replace(self, **changes: Any) -> ArchSpec:
        return dataclasses.replace(self, **changes)

    def scaled(
        self, width_multiplier: float = 1.0, depth_multiplier: float = 1.0
    ) -> ArchSpec:
        """Multiplies the recorded multipliers (scaling composes)."""
        return self.replace(
            width_multiplier=self.width_multiplier * width_multiplier,
            depth_multiplier=self.depth_multiplier * depth_multiplier,
        )

    # -- serialization ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["blocks"] = list(self.block_strings)
        data["format_version"] = SPEC_FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        data = dict(data)
        version = data.pop("format_version", SPEC_FORMAT_VERSION)
        if version != SPEC_FORMAT_VERSION:
            raise SpecError(
                f"architecture format version {version} is not supported "
                f"(this mnas reads version {SPEC_FORMAT_VERSION})"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown architecture fields: {', '.join(unknown)}")
        if "blocks" not in data:
            raise SpecError("architecture is missing 'blocks'")
        data["blocks"] = decode_block_strings(data["blocks"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f"architecture is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise SpecError("architecture JSON must be an object")
        return cls.from_dict(data)
