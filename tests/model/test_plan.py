"""The layer plan: concrete layers of a spec, their op arguments, skips and names."""

from __future__ import annotations

import pytest

from mnas.model.plan import (
    conv_names,
    conv_output_size,
    depthwise_names,
    identity_skip_applies,
    plan_layers,
)
from mnas.search_space import ArchSpec, decode_block_strings, get_preset


def _spec(*blocks: str, stem: int = 16) -> ArchSpec:
    return ArchSpec(
        blocks=decode_block_strings(list(blocks)),
        stem_filters=stem,
        head_filters=32,
        resolution=32,
        name="plan-test",
    )


def test_layers_follow_strides_and_widths():
    spec = _spec("r1_k3_s11_e1_i16_o16", "r2_k5_s22_e6_i16_o24_se0.25")
    layers = plan_layers(spec, (32, 32))
    assert [layer.name for layer in layers] == [
        "block0_layer0",
        "block1_layer0",
        "block1_layer1",
    ]
    assert [layer.global_index for layer in layers] == [0, 1, 2]
    assert [layer.stride for layer in layers] == [1, 2, 1]
    assert [layer.input_size for layer in layers] == [(16, 16), (16, 16), (8, 8)]
    assert [(layer.input_filters, layer.output_filters) for layer in layers] == [
        (16, 16),
        (16, 24),
        (24, 24),
    ]
    second = layers[1]
    assert second.expanded_filters == 96
    assert second.se_filters == 4  # squeezes from the input: 16 * 0.25
    args = second.op_args
    assert (args.c_in, args.c_out, args.kernel, args.stride, args.expand_ratio) == (
        16,
        24,
        5,
        2,
        6,
    )


def test_a_layer_consumes_what_arrives_not_the_declared_input():
    layers = plan_layers(get_preset("mnasnet-small"), (224, 224))
    assert layers[0].block.input_filters == 16
    assert layers[0].input_filters == 8  # the stem's width


@pytest.mark.parametrize(
    "stride, c_in, c_out, applies",
    [(1, 24, 24, True), (2, 24, 24, False), (1, 24, 40, False), (2, 16, 24, False)],
)
def test_identity_skip_applies_only_unstrided_at_equal_widths(
    stride, c_in, c_out, applies
):
    assert identity_skip_applies(stride, c_in, c_out) is applies


def test_skip_properties_of_planned_layers():
    spec = _spec(
        "r2_k3_s22_e1_i16_o24",  # identity: not on the strided first layer
        "r1_k3_s11_e1_i24_o32_poolskip",  # pool skip that projects
        "r1_k3_s11_e1_i32_o32_noskip",
    )
    layers = plan_layers(spec, (32, 32))
    assert [layer.has_identity_skip for layer in layers] == [False, True, False, False]
    assert [layer.pool_skip_projects for layer in layers] == [False, False, True, False]


def test_keras_names_of_op_parts():
    assert conv_names("stem", "") == ("stem_conv", "stem_bn", "stem_act")
    assert conv_names("block2_layer1", "expand") == (
        "block2_layer1_expand_conv",
        "block2_layer1_expand_bn",
        "block2_layer1_expand_act",
    )
    assert depthwise_names("block0_layer0") == (
        "block0_layer0_dwconv",
        "block0_layer0_dw_bn",
        "block0_layer0_dw_act",
    )


def test_conv_output_size_rounds_up():
    assert conv_output_size((7, 8), 2) == (4, 4)
    assert conv_output_size((225, 224), 2) == (113, 112)
