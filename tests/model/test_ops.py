"""Ops are written once (``mnas.model.ops``) and a registered op appears everywhere.

The registry and the structures are checked with a recording backend; the
end-to-end part registers a toy op (a fused MBConv: KxK conv expanding to
e * c_in, BN, act, [SE], 1x1 projection, no depthwise) through the public
registration point and shows it in the builder, the cost counts, the
supernet and the lookup-table graphs without any other change.
"""

from __future__ import annotations

import collections

import keras
import numpy as np
import pytest

from mnas.model import ops
from mnas.model.builder import build_model
from mnas.model.cost import compute_stats
from mnas.model.plan import plan_layers
from mnas.search_space import BlockArgs, decode_block_string
from mnas.search_space.errors import BlockStringError
from mnas.search_space.space import ConvOpChoice, FactorizedSearchSpace, SkeletonBlock

# -- a recording backend: what each structure asks for ---------------------------------


class Recorder(ops.ChannelWalker):
    """A tensor is its channel count; weighted primitives, the gate multiply,
    pooling and the residual add are logged."""

    def __init__(self, c_in=16, c_out=24, se_filters=0, identity_skip=False):
        super().__init__(ops.LayerFacts(c_in, c_out, se_filters, identity_skip))
        self.calls: list[tuple] = []

    def conv_bn(self, x, part, width, kernel, stride, act=True):
        self.calls.append(("conv_bn", part, x, width, kernel, stride, act))
        return width

    def depthwise_bn_act(self, x, kernel, stride):
        self.calls.append(("depthwise", x, kernel, stride))
        return x

    def conv_bias(self, x, part, width):
        self.calls.append(("conv_bias", part, x, width))
        return width

    def multiply(self, x, gate, part):
        self.calls.append(("multiply", x, gate))
        return x

    def avg_pool(self, x, stride, part):
        self.calls.append(("avg_pool", stride))
        return x

    def add(self, y, shortcut):
        self.calls.append(("add", y, shortcut))
        return y


def _record(conv_op, expand=1, skip="none", stride=1, **widths) -> list[tuple]:
    p = Recorder(**widths)
    args = ops.OpArgs(p.layer.c_in, p.layer.c_out, 5, stride, expand)
    ops.apply_layer(p, p.layer.c_in, conv_op, args, skip)
    return p.calls


def test_mbconv_expands_only_with_a_ratio_above_one():
    assert _record("mbconv", expand=6, stride=2) == [
        ("conv_bn", "expand", 16, 96, 1, 1, True),
        ("depthwise", 96, 5, 2),
        ("conv_bn", "project", 96, 24, 1, 1, False),  # linear projection
    ]
    assert [c[0] for c in _record("mbconv", expand=1)] == ["depthwise", "conv_bn"]


def test_dsconv_keeps_its_projection_activation_and_conv_is_one_conv():
    assert _record("dsconv")[-1] == ("conv_bn", "project", 16, 24, 1, 1, True)
    assert _record("conv", stride=2) == [("conv_bn", "", 16, 24, 5, 2, True)]


def test_squeeze_excite_squeezes_to_the_layers_se_width():
    calls = _record("mbconv", expand=3, se_filters=4)
    assert calls[2:5] == [
        ("conv_bias", "se_reduce", 48, 4),
        ("conv_bias", "se_expand", 4, 48),
        ("multiply", 48, 48),
    ]
    assert ("conv_bias", "se_reduce", 24, 4) in _record("conv", se_filters=4)


@pytest.mark.parametrize(
    "skip, widths, stride, expected",
    [
        ("identity", {"c_out": 16, "identity_skip": True}, 1, [("add", 16, 16)]),
        ("identity", {"c_out": 16, "identity_skip": False}, 1, []),
        ("none", {"c_out": 16, "identity_skip": True}, 1, []),
        ("pool", {"c_out": 16}, 1, [("add", 16, 16)]),
        ("pool", {"c_out": 16}, 2, [("avg_pool", 2), ("add", 16, 16)]),
        (
            "pool",
            {"c_out": 24},
            2,
            [
                ("avg_pool", 2),
                ("conv_bn", "skip", 16, 24, 1, 1, False),
                ("add", 24, 24),
            ],
        ),
    ],
)
def test_residual_branches(skip, widths, stride, expected):
    calls = _record("conv", skip=skip, stride=stride, **widths)
    assert calls[1:] == expected


def test_unknown_op_is_refused_by_name():
    with pytest.raises(ValueError) as info:
        ops.get_op("fancy")
    assert str(info.value) == (
        "conv_op must be one of ('mbconv', 'conv', 'dsconv'), got 'fancy' "
        "(register it with mnas.model.ops.register_op)"
    )


@pytest.mark.parametrize(
    "name, message",
    [
        ("conv", "conv op 'conv' is already registered"),
        ("Fused", "conv op name must be lower-case letters and digits, got 'Fused'"),
        ("expand", "conv op name 'expand' would read as a block-string field or skip"),
        ("noskip", "conv op name 'noskip' would read as a block-string field or skip"),
    ],
)
def test_bad_registrations_are_refused(name, message):
    with pytest.raises(ValueError) as info:
        ops.register_op(ops.OpType(name, False, ops.get_op("conv").structure))
    assert str(info.value) == message
    assert ops.op_names() == ("mbconv", "conv", "dsconv")


def test_built_in_ops_cannot_be_unregistered():
    with pytest.raises(BlockStringError) as info:
        ops.unregister_op("mbconv")
    assert str(info.value) == "conv op 'mbconv' is built in"
    assert ops.get_op("mbconv").official


# -- adding an op, end to end -----------------------------------------------------------


def fused_mbconv(p: ops.Primitives, x, a: ops.OpArgs):
    """Fused MBConv: KxK conv expanding to e * c_in, BN, act, [SE], linear 1x1."""
    inner = a.c_in * a.expand_ratio
    y = p.conv_bn(x, "expand", inner, a.kernel, a.stride)
    y = p.squeeze_excite(y, inner)
    return p.conv_bn(y, "project", a.c_out, 1, 1, act=False)


@pytest.fixture
def fused():
    """Registers ``fmbconv`` for one test and removes it afterwards."""
    ops.register_op(ops.OpType("fmbconv", expands=True, structure=fused_mbconv))
    yield "fmbconv"
    ops.unregister_op("fmbconv")


def _space() -> FactorizedSearchSpace:
    return FactorizedSearchSpace(
        name="fused",
        version=1,
        skeleton=(SkeletonBlock(1, 16, 1, 1), SkeletonBlock(4, 24, 2, 2)),
        conv_ops=(
            ConvOpChoice("fmbconv_e4", "fmbconv", 4),
            ConvOpChoice("mbconv_e3", "mbconv", 3),
        ),
        kernel_sizes=(3, 5),
        filter_multipliers=(0.75, 1.0),
        layer_offsets=(0, 1),
        stem_filters=16,
        head_filters=32,
        resolution=32,
    )


def _fused_specs(space, count, sharing="block", seed=0):
    """Decoded random architectures whose every layer is the fused op."""
    decisions = space.decisions_for(sharing)
    rng = np.random.default_rng(seed)
    for _ in range(count):
        actions = [
            0 if d.kind == "conv_op" else int(rng.integers(d.num_choices))
            for d in decisions
        ]
        yield actions, space.decode_for(sharing, actions)


def test_the_registration_is_undone_by_the_fixture():
    assert ops.op_names() == ("mbconv", "conv", "dsconv")
    with pytest.raises(BlockStringError):
        decode_block_string("r1_k3_s11_e4_i16_o16_fmbconv")


def test_a_registered_op_is_a_block_string_token(fused):
    block = decode_block_string("r2_k5_s22_e4_i16_o24_se0.25_fmbconv_poolskip")
    assert (block.conv_op, block.expand_ratio, block.skip) == (fused, 4, "pool")
    assert block.to_string() == "r2_k5_s22_e4_i16_o24_se0.25_fmbconv_poolskip"


def test_the_builder_builds_it_and_the_costs_count_it(fused):
    keras.backend.clear_session()
    space = _space()
    for _, spec in _fused_specs(space, 6):
        model = build_model(spec, (32, 32, 3), 10)
        names = {layer.name for layer in model.layers}
        assert "block0_layer0_expand_conv" in names
        assert not any(name.endswith("_dwconv") for name in names)
        expand = model.get_layer("block1_layer0_expand_conv")
        assert expand.kernel_size == (spec.blocks[1].kernel_size,) * 2
        assert expand.strides == (2, 2)
        assert expand.filters == 4 * spec.blocks[0].output_filters
        stats = compute_stats(spec, (32, 32, 3), 10)
        assert stats.params == model.count_params()
        keras.backend.clear_session()


def test_the_cost_of_one_fused_layer_by_hand(fused):
    spec = _space().decode([0, 1, 0, 0, 1, 0] * 2)  # k5, no SE, no skip
    row = compute_stats(spec, (32, 32, 3), 10).layers[1]
    # 5x5 conv 16 -> 64 at 16x16 plus BN, then 1x1 64 -> 16 plus BN.
    assert row.params == 5 * 5 * 16 * 64 + 4 * 64 + 64 * 16 + 4 * 16
    assert row.macs == 16 * 16 * (5 * 5 * 16 * 64 + 64 * 16)


@pytest.mark.parametrize("sharing", ["block", "layer"])
def test_the_supernet_holds_it_and_one_hot_equals_the_plain_build(fused, sharing):
    from mnas.model.supernet import build_supernet
    from mnas.testing.dnas import (
        assert_supernet_computes_plain,
        randomize_supernet,
        set_one_hot_theta,
    )

    space = _space()
    shape = (16, 16, 3)
    net = build_supernet(space, sharing, shape, 10)
    for layer in net.searchable:
        assert [c.name for c in layer.candidates] == ["fmbconv_e4", "mbconv_e3"]
        assert layer.candidates[0].conv_op == fused
    rng = np.random.default_rng(3)
    randomize_supernet(net, rng)
    images = rng.uniform(-1, 1, (2, *shape)).astype(np.float32)
    for actions, spec in _fused_specs(space, 3, sharing, seed=4):
        set_one_hot_theta(net, actions)
        assert net.derive() == spec
        assert_supernet_computes_plain(net, spec, images)


def test_its_table_entries_convert_like_the_keras_layer(fused):
    from mnas.latency.export import tflite_op_names
    from mnas.latency.lut.graph import export_entry
    from mnas.latency.lut.keys import keys_for_spec, space_keys
    from mnas.testing.lut import builder_layer_tflite

    space = _space()
    # k3, SE, pool skip: block 0 16 -> 16 (an add); block 1 strided 16 -> 24
    # (avg pool + projection), then 24 -> 24 (an add).
    spec = space.decode([0, 0, 1, 2, 1, 0, 0, 0, 1, 2, 1, 1])
    keys = keys_for_spec(spec, num_classes=10)
    assert [str(k) for k in keys[1:4]] == [
        "layer:fmbconv_e4_k3_s1_se4_add:16x16x16->16:relu",
        "layer:fmbconv_e4_k3_s2_se4_pool:16x16x16->24:relu",
        "layer:fmbconv_e4_k3_s1_se6_add:8x8x24->24:relu",
    ]
    assert set(keys) <= set(space_keys(space, num_classes=10))
    for key, layer in zip(keys[1:4], plan_layers(spec, (32, 32))):
        entry = collections.Counter(tflite_op_names(export_entry(key)))
        piece = builder_layer_tflite(spec, layer)
        assert entry == collections.Counter(tflite_op_names(piece)), str(key)
        assert entry["DEPTHWISE_CONV_2D"] == 0


def test_expected_latency_covers_it(fused):
    from mnas.latency.lut.expected import ExpectedLatency
    from mnas.latency.lut.predictor import LatencyPredictor
    from mnas.testing.latency_models import synthetic_table

    space = _space()
    predictor = LatencyPredictor(synthetic_table(space, num_classes=10))
    expected = ExpectedLatency(predictor, space, "layer")
    for actions, spec in _fused_specs(space, 5, "layer", seed=8):
        value = float(expected(expected.one_hot(actions)))
        assert value == pytest.approx(predictor.predict(spec), rel=1e-5)


def test_block_args_accept_its_expansion_only_while_registered(fused):
    block = BlockArgs(1, 3, 1, 4, 16, 16, conv_op=fused)
    assert block.expand_ratio == 4
    ops.unregister_op(fused)
    try:
        with pytest.raises(BlockStringError) as info:
            BlockArgs(1, 3, 1, 4, 16, 16, conv_op=fused)
        assert str(info.value) == (
            "conv_op must be one of ('mbconv', 'conv', 'dsconv'), got 'fmbconv'"
        )
    finally:
        ops.register_op(ops.OpType(fused, expands=True, structure=fused_mbconv))
