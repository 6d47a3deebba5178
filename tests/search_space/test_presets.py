import pytest

from mnas.search_space import UnknownPresetError, get_preset, parse_arch, preset_names


@pytest.mark.parametrize("name", preset_names())
def test_each_preset_is_named_after_itself_and_rebuilds_from_its_strings(name):
    """``--arch=NAME`` and ``--arch=<its block strings>`` build one network."""
    spec = get_preset(name)
    assert spec.name == name
    assert parse_arch(name) == spec
    rebuilt = parse_arch(",".join(spec.block_strings))
    assert rebuilt.blocks == spec.blocks


def test_unknown_preset_lists_known_ones():
    with pytest.raises(UnknownPresetError) as info:
        get_preset("mnasnet-z9")
    assert str(info.value) == (
        "unknown preset 'mnasnet-z9'; known presets: efficientnet-b0, "
        "efficientnet-b1, efficientnet-b2, efficientnet-b3, efficientnet-b4, "
        "efficientnet-b5, efficientnet-b6, efficientnet-b7, mnasnet-a1, "
        "mnasnet-b1, mnasnet-d1, mnasnet-d1-320, mnasnet-small, mobilenet-v2"
    )


def test_parse_arch_accepts_block_strings():
    spec = parse_arch("r1_k3_s11_e1_i32_o16_noskip, r2_k3_s22_e6_i16_o24")
    assert spec.block_strings == ("r1_k3_s11_e1_i32_o16_noskip", "r2_k3_s22_e6_i16_o24")
    assert parse_arch("mnasnet-b1") == get_preset("mnasnet-b1")
    with pytest.raises(UnknownPresetError, match="known presets"):
        parse_arch("resnet50")


@pytest.mark.parametrize("name", preset_names())
def test_multipliers_apply_to_every_preset(name):
    wide = get_preset(name, width_multiplier=1.4, depth_multiplier=1.5)
    base = get_preset(name)
    assert sum(b.num_repeat for b in wide.scaled_blocks()) > sum(
        b.num_repeat for b in base.scaled_blocks()
    )
    assert (
        wide.scaled_blocks()[-1].output_filters
        > base.scaled_blocks()[-1].output_filters
    )
    assert wide.blocks == base.blocks  # presets stay in published form


def test_mobilenet_v2_skeleton():
    assert get_preset("mobilenet-v2").block_strings == (
        "r1_k3_s11_e1_i32_o16",
        "r2_k3_s22_e6_i16_o24",
        "r3_k3_s22_e6_i24_o32",
        "r4_k3_s22_e6_i32_o64",
        "r3_k3_s11_e6_i64_o96",
        "r3_k3_s22_e6_i96_o160",
        "r1_k3_s11_e6_i160_o320",
    )
