"""Published architectures, written in the block-string language.

Kept apart from the builder (as in tensorflow/tpu's mnasnet_models) so that a
preset is plain data: a name, block strings and global parameters.
"""

from __future__ import annotations

from collections.abc import Callable

from mnas.search_space.arch_spec import MAX_LAYERS, ArchSpec
from mnas.search_space.block_args import decode_block_strings
from mnas.search_space.errors import SpecError, UnknownPresetError
from mnas.search_space.validation import shown

_MNASNET_A1 = (
    "r1_k3_s11_e1_i32_o16_noskip",
    "r2_k3_s22_e6_i16_o24",
    "r3_k5_s22_e3_i24_o40_se0.25",
    "r4_k3_s22_e6_i40_o80",
    "r2_k3_s11_e6_i80_o112_se0.25",
    "r3_k5_s22_e6_i112_o160_se0.25",
    "r1_k3_s11_e6_i160_o320",
)
_MNASNET_B1 = (
    "r1_k3_s11_e1_i32_o16_noskip",
    "r3_k3_s22_e3_i16_o24",
    "r3_k5_s22_e3_i24_o40",
    "r3_k5_s22_e6_i40_o80",
    "r2_k3_s11_e6_i80_o96",
    "r4_k5_s22_e6_i96_o192",
    "r1_k3_s11_e6_i192_o320_noskip",
)
_MNASNET_SMALL = (
    "r1_k3_s11_e1_i16_o8",
    "r1_k3_s22_e3_i8_o16",
    "r2_k3_s22_e6_i16_o16",
    "r4_k5_s22_e6_i16_o32_se0.25",
    "r3_k3_s11_e6_i32_o32_se0.25",
    "r3_k5_s22_e6_i32_o88_se0.25",
    "r1_k3_s11_e6_i88_o144",
)
_MNASNET_D1 = (
    "r1_k3_s11_e9_i32_o24",
    "r3_k3_s22_e9_i24_o36",
    "r5_k3_s22_e9_i36_o48",
    "r4_k5_s22_e9_i48_o96",
    "r5_k7_s11_e3_i96_o96",
    "r3_k3_s22_e9_i96_o80",
    "r1_k7_s11_e6_i80_o320_noskip",
)
_MNASNET_D1_320 = (
    "r3_k5_s11_e6_i32_o24",
    "r4_k7_s22_e9_i24_o36",
    "r5_k5_s22_e9_i36_o48",
    "r5_k7_s22_e6_i48_o96",
    "r5_k3_s11_e9_i96_o144",
    "r5_k5_s22_e6_i144_o160",
    "r1_k7_s11_e9_i160_o320",
)
# MobileNetV2 (t, c, n, s): (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2)
# (6,96,3,1) (6,160,3,2) (6,320,1,1).
MOBILENET_V2_SKELETON: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_EFFICIENTNET_B0 = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)


def mobilenet_v2_block_strings() -> tuple[str, ...]:
    strings = []
    in_filters = 32
    for expand, filters, repeats, stride in MOBILENET_V2_SKELETON:
        strings.append(
            f"r{repeats}_k3_s{stride}{stride}_e{expand}_i{in_filters}_o{filters}"
        )
        in_filters = filters
    return tuple(strings)


def _spec(name: str, block_strings: tuple[str, ...], **params) -> ArchSpec:
    return ArchSpec(blocks=decode_block_strings(block_strings), name=name, **params)


_PRESETS: dict[str, Callable[[], ArchSpec]] = {
    "mnasnet-a1": lambda: _spec("mnasnet-a1", _MNASNET_A1),
    "mnasnet-b1": lambda: _spec("mnasnet-b1", _MNASNET_B1),
    "mnasnet-small": lambda: _spec(
        "mnasnet-small", _MNASNET_SMALL, stem_filters=8, dropout_rate=0.0
    ),
    "mnasnet-d1": lambda: _spec("mnasnet-d1", _MNASNET_D1),
    "mnasnet-d1-320": lambda: _spec("mnasnet-d1-320", _MNASNET_D1_320),
    # Keras' MobileNetV2: ReLU6, head widened only for alpha > 1, BN momentum 0.999.
    "mobilenet-v2": lambda: _spec(
        "mobilenet-v2",
        mobilenet_v2_block_strings(),
        activation="relu6",
        head_scaling="scaled_if_wider",
        batch_norm_momentum=0.999,
    ),
    "efficientnet-b0": lambda: _spec(
        "efficientnet-b0",
        _EFFICIENTNET_B0,
        activation="swish",
        head_scaling="scaled",
        drop_connect_rate=0.2,
    ),
}


def _efficientnet_preset(name: str) -> Callable[[], ArchSpec]:
    from mnas.search_space.scaling import efficientnet

    return lambda: efficientnet(_PRESETS["efficientnet-b0"](), name)


# B1 ... B7: B0 with width, depth, resolution and dropout from the published
# table (mnas.search_space.scaling.EFFICIENTNET_TABLE).
for _index in range(1, 8):
    _PRESETS[f"efficientnet-b{_index}"] = _efficientnet_preset(
        f"efficientnet-b{_index}"
    )


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(_PRESETS))


def get_preset(
    name: str, width_multiplier: float = 1.0, depth_multiplier: float = 1.0
) -> ArchSpec:
    """Returns the named preset, with multipliers recorded on the spec."""
    if not isinstance(name, str) or name not in _PRESETS:
        raise UnknownPresetError(
            f"unknown preset {shown(name)}; known presets: {', '.join(preset_names())}"
        )
    spec = _PRESETS[name]()
    if width_multiplier != 1.0 or depth_multiplier != 1.0:
        spec = spec.scaled(width_multiplier, depth_multiplier)
    return spec


def parse_arch(text: str, **overrides) -> ArchSpec:
    """A preset name, or comma/space separated block strings, into an ``ArchSpec``."""
    if not isinstance(text, str):
        raise SpecError(
            f"an architecture must be a preset name or block strings, got "
            f"{type(text).__name__}"
        )
    text = text.strip()
    if text in _PRESETS:
        spec = get_preset(text)
    elif "_" in text:
        strings = tuple(s for s in text.replace(",", " ").split() if s)
        if len(strings) > MAX_LAYERS:
            raise SpecError(
                f"blocks must hold at most {MAX_LAYERS} blocks, got {len(strings)}"
            )
        spec = _spec("custom", strings)
    else:
        raise UnknownPresetError(
            f"unknown preset {shown(text)}; known presets: {', '.join(preset_names())} "
            "(or give block strings such as r1_k3_s11_e1_i32_o16_noskip,...)"
        )
    return spec.replace(**overrides) if overrides else spec
