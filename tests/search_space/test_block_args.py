import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnas.search_space import (
    BlockArgs,
    BlockStringError,
    decode_block_string,
    encode_block_string,
    get_preset,
    preset_names,
)

ALL_PRESET_STRINGS = sorted(
    {s for name in preset_names() for s in get_preset(name).block_strings}
)


@pytest.mark.parametrize("block_string", ALL_PRESET_STRINGS)
def test_preset_block_strings_round_trip(block_string):
    block = decode_block_string(block_string)
    assert encode_block_string(block) == block_string
    assert decode_block_string(encode_block_string(block)) == block


def test_decode_official_fields():
    block = decode_block_string("r3_k5_s22_e3_i24_o40_se0.25")
    assert block == BlockArgs(
        num_repeat=3,
        kernel_size=5,
        stride=2,
        expand_ratio=3,
        input_filters=24,
        output_filters=40,
        se_ratio=0.25,
    )
    assert decode_block_string("r1_k3_s11_e1_i32_o16_noskip").skip == "none"


@pytest.mark.parametrize(
    "block_string, conv_op, skip",
    [
        ("r2_k3_s22_e1_i16_o24_conv", "conv", "identity"),
        ("r2_k5_s11_e1_i16_o24_se0.25_dsconv_poolskip", "dsconv", "pool"),
        ("r1_k3_s11_e6_i16_o16_poolskip", "mbconv", "pool"),
    ],
)
def test_extension_tokens_round_trip(block_string, conv_op, skip):
    block = decode_block_string(block_string)
    assert (block.conv_op, block.skip) == (conv_op, skip)
    assert encode_block_string(block) == block_string


def test_field_order_is_free_but_encoding_is_canonical():
    block = decode_block_string("noskip_o16_i32_e1_s11_k3_r1")
    assert encode_block_string(block) == "r1_k3_s11_e1_i32_o16_noskip"


@pytest.mark.parametrize(
    "block_string, message",
    [
        (
            "r1_k3_s11_eX_i32_o16",
            "malformed expansion (e) field 'eX' in block string 'r1_k3_s11_eX_i32_o16' "
            "(expected e and ASCII digits, e.g. e6)",
        ),
        (
            "r1_k3_s2_e1_i32_o16",
            "malformed stride (s) field 's2' in block string 'r1_k3_s2_e1_i32_o16' "
            "(expected s and two equal ASCII digits, e.g. s22)",
        ),
        (
            "r1_k3_s12_e1_i32_o16",
            "stride (s) field must be square (e.g. s22), got s12 in block string "
            "'r1_k3_s12_e1_i32_o16'",
        ),
        (
            "r1_k3_s11_e1_o16",
            "block string 'r1_k3_s11_e1_o16' is missing input filters (i)",
        ),
        (
            "r1_k3_s11_e1_i32_o16_z9",
            "unknown field 'z9' in block string 'r1_k3_s11_e1_i32_o16_z9'",
        ),
        (
            "r1_r2_k3_s11_e1_i32_o16",
            "repeats (r) given twice in block string 'r1_r2_k3_s11_e1_i32_o16'",
        ),
        (
            "r1_k3_s11_e1_i32_o16_se1.5",
            "squeeze-excite ratio (se) must be in [0.0001, 1], got 1.5 in block string "
            "'r1_k3_s11_e1_i32_o16_se1.5'",
        ),
        (
            "r0_k3_s11_e1_i32_o16",
            "num_repeat must be an integer in [1, 64], got 0 in block string "
            "'r0_k3_s11_e1_i32_o16'",
        ),
        (
            "r1_k4_s11_e1_i32_o16",
            "kernel_size must be odd, got 4 in block string 'r1_k4_s11_e1_i32_o16'",
        ),
        (
            "r1_k3_s11_e6_i32_o16_conv",
            "expand_ratio must be 1 for conv_op 'conv', got 6 in block string "
            "'r1_k3_s11_e6_i32_o16_conv'",
        ),
        (
            "r1_k3__s11_e1_i32_o16",
            "empty field in block string 'r1_k3__s11_e1_i32_o16'",
        ),
        ("", "empty block string"),
    ],
)
def test_malformed_block_strings_name_the_field(block_string, message):
    with pytest.raises(BlockStringError) as info:
        decode_block_string(block_string)
    assert str(info.value) == message


@given(st.text(max_size=40))
def test_random_text_only_raises_block_string_error(text):
    try:
        block = decode_block_string(text)
    except BlockStringError:
        return
    assert decode_block_string(encode_block_string(block)) == block


_TOKENS = st.sampled_from(
    [
        "r1",
        "r3",
        "k3",
        "k5",
        "k4",
        "s11",
        "s22",
        "e1",
        "e6",
        "i16",
        "o24",
        "se0.25",
        "se0",
        "noskip",
        "poolskip",
        "conv",
        "dsconv",
        "x",
        "r",
        "s2",
        "o0",
        "e0",
    ]
)


@given(st.lists(_TOKENS, max_size=10))
def test_random_token_soup_only_raises_block_string_error(tokens):
    try:
        block = decode_block_string("_".join(tokens))
    except BlockStringError:
        return
    assert decode_block_string(encode_block_string(block)) == block


def test_non_string_is_rejected():
    with pytest.raises(BlockStringError, match="block string must be a str, got int"):
        decode_block_string(3)


def test_a_registered_conv_op_is_a_token_until_unregistered():
    from mnas.search_space.block_args import (
        conv_op_expands,
        conv_op_names,
        register_conv_op,
        unregister_conv_op,
    )

    register_conv_op("ghost", expands=False)
    try:
        block = decode_block_string("r1_k3_s11_e1_i16_o16_ghost")
        assert block.conv_op == "ghost" and not conv_op_expands("ghost")
        assert encode_block_string(block) == "r1_k3_s11_e1_i16_o16_ghost"
        with pytest.raises(BlockStringError) as info:
            decode_block_string("r1_k3_s11_e2_i16_o16_ghost")
        assert str(info.value).startswith("expand_ratio must be 1 for conv_op 'ghost'")
        with pytest.raises(BlockStringError) as info:
            decode_block_string("r1_k3_s11_e1_i16_o16_ghost_conv")
        assert str(info.value).startswith("conv op given twice")
    finally:
        unregister_conv_op("ghost")
    assert conv_op_names() == ("mbconv", "conv", "dsconv")
    with pytest.raises(BlockStringError) as info:
        decode_block_string("r1_k3_s11_e1_i16_o16_ghost")
    assert str(info.value) == (
        "unknown field 'ghost' in block string 'r1_k3_s11_e1_i16_o16_ghost'"
    )
    with pytest.raises(BlockStringError) as info:
        unregister_conv_op("ghost")
    assert str(info.value) == "conv op 'ghost' is not registered"
