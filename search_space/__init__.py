"""Search space, architecture specs, block strings and presets (data only: no Keras)."""

from mnas.search_space.arch_spec import ArchSpec, round_filters, round_repeats
from mnas.search_space.block_args import (
    BlockArgs,
    decode_block_string,
    decode_block_strings,
    encode_block_string,
    encode_block_strings,
)
from mnas.search_space.decision import Decision
from mnas.search_space.errors import (
    ActionError,
    BlockStringError,
    NotInSpaceError,
    SpecError,
    UnknownPresetError,
)
from mnas.search_space.presets import get_preset, parse_arch, preset_names
from mnas.search_space.scaling import DEFAULT_TOLERANCE as DEFAULT_SCALING_TOLERANCE
from mnas.search_space.scaling import (
    ScalingCoefficients,
    ScalingError,
    efficientnet,
    scale,
    scale_family,
    scaled_resolution,
)
from mnas.search_space.space import (
    MNASNET_SPACE,
    FactorizedSearchSpace,
    get_search_space,
)

__all__ = [
    "DEFAULT_SCALING_TOLERANCE",
    "MNASNET_SPACE",
    "ActionError",
    "ArchSpec",
    "BlockArgs",
    "BlockStringError",
    "Decision",
    "FactorizedSearchSpace",
    "NotInSpaceError",
    "ScalingCoefficients",
    "ScalingError",
    "SpecError",
    "UnknownPresetError",
    "decode_block_string",
    "decode_block_strings",
    "encode_block_string",
    "encode_block_strings",
    "efficientnet",
    "get_preset",
    "get_search_space",
    "parse_arch",
    "preset_names",
    "round_filters",
    "round_repeats",
    "scale",
    "scale_family",
    "scaled_resolution",
]
