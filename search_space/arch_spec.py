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
from collections.abc import Mapping
from typing import Any, Literal

from mnas.search_space.block_args import (
    MAX_FILTERS,
    MAX_REPEATS,
    BlockArgs,
    decode_block_string,
    encode_block_strings,
)
from mnas.search_space.errors import BlockStringError, SpecError
from mnas.search_space.validation import (
    check_choice,
    check_fields,
    check_int,
    check_real,
    check_text,
    shown,
)

Activation = Literal["relu", "relu6", "swish"]
HeadScaling = Literal["fixed", "scaled", "scaled_if_wider"]
ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "swish")
HEAD_SCALINGS: tuple[str, ...] = ("fixed", "scaled", "scaled_if_wider")

SPEC_FORMAT_VERSION = 1

# Bounds of the global fields. A spec within them is a network that
# ``mnas-describe`` counts in milliseconds; anything beyond is refused before
# anything is built.
MIN_RESOLUTION = 8
MAX_RESOLUTION = 2048
#: Largest width or depth multiplier as recorded (scalings compose, so this is
#: their product; EfficientNet-B7 records 2.0 and 3.1).
MAX_MULTIPLIER = 8.0
MAX_DEPTH_DIVISOR = 256
#: Most layers of the built network (blocks' repeats after depth scaling;
#: EfficientNet-B7 has 55).
MAX_LAYERS = 512
MAX_NAME_LENGTH = 128


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
        for name, (low, high) in _INT_FIELDS.items():
            value = check_int(name, getattr(self, name), low, high, error=SpecError)
            object.__setattr__(self, name, value)
        for name, (low, high, low_open, high_open) in _REAL_FIELDS.items():
            value = check_real(
                name,
                getattr(self, name),
                low,
                high,
                low_open=low_open,
                high_open=high_open,
                error=SpecError,
            )
            object.__setattr__(self, name, value)
        check_choice("activation", self.activation, ACTIVATIONS, error=SpecError)
        check_choice("head_scaling", self.head_scaling, HEAD_SCALINGS, error=SpecError)
        check_text("name", self.name, MAX_NAME_LENGTH, error=SpecError)
        blocks = self.blocks
        if isinstance(blocks, str | bytes) or not isinstance(blocks, list | tuple):
            raise SpecError(
                f"blocks must be a sequence of BlockArgs, got {type(blocks).__name__}"
            )
        if not blocks:
            raise SpecError("an architecture needs at least one block")
        if len(blocks) > MAX_LAYERS:
            raise SpecError(
                f"blocks must hold at most {MAX_LAYERS} blocks, got {len(blocks)}"
            )
        for index, block in enumerate(blocks):
            if not isinstance(block, BlockArgs):
                raise SpecError(
                    f"blocks must be BlockArgs, got {type(block).__name__} "
                    f"at index {index}"
                )
        object.__setattr__(self, "blocks", tuple(blocks))
        for index, (prev, block) in enumerate(zip(self.blocks, self.blocks[1:]), 1):
            if block.input_filters != prev.output_filters:
                raise SpecError(
                    f"block {index} input filters ({block.input_filters}) differ from "
                    f"block {index - 1} output filters ({prev.output_filters})"
                )
        self._check_built_size()

    def _check_built_size(self) -> None:
        """The built network's size from the spec alone (microseconds): total
        layers after depth scaling, and every filter count after width
        scaling, expansion included, so ``scaled_blocks()`` always succeeds
        and no layer is planned before a hopeless spec is refused."""
        depth = self.depth_multiplier
        total = 0
        for index, block in enumerate(self.blocks):
            repeats = round_repeats(block.num_repeat, depth)
            if repeats > MAX_REPEATS:
                raise SpecError(
                    f"block {index} repeats after depth scaling must be <= "
                    f"{MAX_REPEATS}, got {repeats} (num_repeat {block.num_repeat} "
                    f"x depth_multiplier {depth:g}, rounded up)"
                )
            total += repeats
        if total > MAX_LAYERS:
            raise SpecError(
                f"total layers after depth scaling must be <= {MAX_LAYERS}, got "
                f"{total} (the blocks' repeats x depth_multiplier {depth:g})"
            )
        width = self.width_multiplier
        for name, filters in (
            ("stem_filters", self.scaled_stem_filters()),
            ("head_filters", self.scaled_head_filters()),
        ):
            if filters > MAX_FILTERS:
                raise SpecError(
                    f"{name} after width scaling must be <= {MAX_FILTERS}, got "
                    f"{filters} (width_multiplier {width:g})"
                )
        arriving = self.scaled_stem_filters()
        for index, block in enumerate(self.blocks):
            widths = (
                arriving,
                self.scale_filters(block.input_filters),
                self.scale_filters(block.output_filters),
            )
            widest = max(widths) * block.expand_ratio
            if widest > MAX_FILTERS:
                raise SpecError(
                    f"block {index} filters after width scaling must be <= "
                    f"{MAX_FILTERS}, got {widest} (input {widths[1]}, output "
                    f"{widths[2]}, arriving {widths[0]}, x expand_ratio "
                    f"{block.expand_ratio}; width_multiplier {width:g})"
                )
            arriving = widths[2]

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
        check_fields(ArchSpec, changes, "architecture fields", error=SpecError)
        return dataclasses.replace(self, **changes)

    def scaled(
        self, width_multiplier: float = 1.0, depth_multiplier: float = 1.0
    ) -> ArchSpec:
        """Multiplies the recorded multipliers (scaling composes)."""
        factors = {}
        for name, value in (
            ("width_multiplier", width_multiplier),
            ("depth_multiplier", depth_multiplier),
        ):
            low, high, low_open, high_open = _REAL_FIELDS[name]
            factor = check_real(
                name, value, low, high, low_open=low_open, error=SpecError
            )
            factors[name] = getattr(self, name) * factor
        return self.replace(**factors)

    # -- serialization ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["blocks"] = list(self.block_strings)
        data["format_version"] = SPEC_FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchSpec:
        """Inverse of ``to_dict``; a field of the wrong JSON type is a
        SpecError naming it, like any other bad value."""
        if not isinstance(data, Mapping):
            raise SpecError(
                f"an architecture must be a JSON object, got {type(data).__name__}"
            )
        data = dict(data)
        version = data.pop("format_version", SPEC_FORMAT_VERSION)
        if isinstance(version, bool) or version != SPEC_FORMAT_VERSION:
            raise SpecError(
                f"architecture format version {shown(version)} is not supported "
                f"(this mnas reads version {SPEC_FORMAT_VERSION})"
            )
        check_fields(cls, data, "architecture fields", error=SpecError)
        if "blocks" not in data:
            raise SpecError("architecture is missing 'blocks'")
        strings = data["blocks"]
        if not isinstance(strings, list | tuple):
            raise SpecError(
                f"blocks must be a list of block strings, got {shown(strings)}"
            )
        if len(strings) > MAX_LAYERS:
            raise SpecError(
                f"blocks must hold at most {MAX_LAYERS} blocks, got {len(strings)}"
            )
        blocks = []
        for index, text in enumerate(strings):
            try:
                blocks.append(decode_block_string(text))
            except BlockStringError as error:
                raise BlockStringError(f"blocks[{index}]: {error}") from None
        data["blocks"] = tuple(blocks)
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ArchSpec:
        if not isinstance(text, str | bytes | bytearray):
            raise SpecError(
                f"architecture JSON must be text, got {type(text).__name__}"
            )
        try:
            data = json.loads(text)
        except RecursionError:
            raise SpecError("architecture JSON is nested too deeply") from None
        except ValueError as error:  # JSONDecodeError, too many digits, bad UTF-8
            raise SpecError(f"architecture is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise SpecError("architecture JSON must be an object")
        return cls.from_dict(data)


#: Integer fields -> (low, high).
_INT_FIELDS: dict[str, tuple[int, int]] = {
    "stem_filters": (1, MAX_FILTERS),
    "head_filters": (1, MAX_FILTERS),
    "resolution": (MIN_RESOLUTION, MAX_RESOLUTION),
    "depth_divisor": (1, MAX_DEPTH_DIVISOR),
}
#: Real-number fields -> (low, high, low open, high open).
_REAL_FIELDS: dict[str, tuple[float, float, bool, bool]] = {
    "dropout_rate": (0.0, 1.0, False, True),
    "drop_connect_rate": (0.0, 1.0, False, True),
    "width_multiplier": (0.0, MAX_MULTIPLIER, True, False),
    "depth_multiplier": (0.0, MAX_MULTIPLIER, True, False),
    "batch_norm_momentum": (0.0, 1.0, False, True),
    # Keras' BatchNormalization needs epsilon > 0; a negative one gives NaNs.
    "batch_norm_epsilon": (0.0, 1.0, True, False),
}
