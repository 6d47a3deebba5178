import pytest

from mnas.search_space import (
    ArchSpec,
    SpecError,
    decode_block_strings,
    get_preset,
    preset_names,
    round_filters,
    round_repeats,
)


@pytest.mark.parametrize(
    "filters, multiplier, expected",
    [
        (32, 1.0, 32),
        (36, 1.0, 40),  # the function always rounds; ArchSpec calls it only
        # with a width multiplier (see the tests below)
        (16, 1.4, 24),
        (24, 1.4, 32),
        (320, 1.4, 448),
        (16, 0.35, 8),  # at least the divisor
        (24, 0.4, 16),  # 9.6 -> 8 would lose over 10%, so 8 more
        (1280, 1.1, 1408),
    ],
)
def test_round_filters(filters, multiplier, expected):
    assert round_filters(filters, multiplier) == expected


@pytest.mark.parametrize(
    "repeats, multiplier, expected",
    [(3, 1.0, 3), (3, 1.1, 4), (1, 3.1, 4), (4, 1.2, 5)],
)
def test_round_repeats(repeats, multiplier, expected):
    assert round_repeats(repeats, multiplier) == expected


@pytest.mark.parametrize("name", preset_names())
def test_dict_and_json_round_trip(name):
    spec = get_preset(name, width_multiplier=1.4, depth_multiplier=1.2)
    assert ArchSpec.from_dict(spec.to_dict()) == spec
    assert ArchSpec.from_json(spec.to_json()) == spec


def test_scaling_applies_to_blocks_and_stem():
    spec = get_preset("mnasnet-a1", width_multiplier=1.4, depth_multiplier=1.2)
    blocks = spec.scaled_blocks()
    assert spec.scaled_stem_filters() == 48
    assert [b.output_filters for b in blocks] == [24, 32, 56, 112, 160, 224, 448]
    assert [b.num_repeat for b in blocks] == [2, 3, 4, 5, 3, 4, 2]
    assert spec.scaled_head_filters() == 1280  # MnasNet keeps the head fixed
    assert get_preset("efficientnet-b0", 1.1).scaled_head_filters() == 1408


def test_filters_stay_as_declared_without_a_width_multiplier():
    # Official round_filters returns filters unchanged without a multiplier:
    # mnasnet-d1's o36 builds 36 filters, so its checkpoints load.
    blocks = get_preset("mnasnet-d1").scaled_blocks()
    assert [b.output_filters for b in blocks] == [24, 36, 48, 96, 96, 80, 320]
    spec = ArchSpec(blocks=decode_block_strings(["r1_k3_s11_e6_i20_o36"]))
    spec = spec.replace(stem_filters=20)
    assert spec.scaled_stem_filters() == 20
    assert spec.scaled_blocks()[0].input_filters == 20
    assert spec.scaled_blocks()[0].output_filters == 36


@pytest.mark.parametrize(
    "width, expected",
    [
        # 24 x 0.75 = 18 rounds to 16, under 90% of 18, so 24; 36 -> 27 -> 32.
        (0.75, [24, 32, 40, 72, 72, 64, 240]),
        # 36 x 1.4 = 50.4 rounds down to 48, within 10%.
        (1.4, [32, 48, 64, 136, 136, 112, 448]),
        (0.35, [8, 16, 16, 32, 32, 32, 112]),
    ],
)
def test_a_width_multiplier_scales_and_rounds_every_filter(width, expected):
    spec = get_preset("mnasnet-d1", width_multiplier=width)
    assert [b.output_filters for b in spec.scaled_blocks()] == expected


def test_inconsistent_chain_is_refused():
    blocks = decode_block_strings(["r1_k3_s11_e1_i32_o16", "r1_k3_s22_e6_i24_o24"])
    with pytest.raises(SpecError) as info:
        ArchSpec(blocks=blocks)
    assert str(info.value) == (
        "block 1 input filters (24) differ from block 0 output filters (16)"
    )


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"activation": "gelu"},
            "activation must be one of ('relu', 'relu6', 'swish'), got 'gelu'",
        ),
        ({"dropout_rate": 1.0}, "dropout_rate must be a number in [0, 1), got 1.0"),
        ({"width_multiplier": 0}, "width_multiplier must be a number in (0, 8], got 0"),
        ({"resolution": 0}, "resolution must be an integer in [8, 2048], got 0"),
        ({"blocks": ()}, "an architecture needs at least one block"),
    ],
)
def test_bad_global_params(changes, message):
    with pytest.raises(SpecError) as info:
        get_preset("mnasnet-a1").replace(**changes)
    assert str(info.value) == message


def test_from_dict_errors():
    data = get_preset("mnasnet-a1").to_dict()
    with pytest.raises(SpecError, match="format version 99 is not supported"):
        ArchSpec.from_dict({**data, "format_version": 99})
    with pytest.raises(SpecError, match="unknown architecture fields: colour"):
        ArchSpec.from_dict({**data, "colour": "red"})
    with pytest.raises(SpecError, match="not valid JSON"):
        ArchSpec.from_json("{")
