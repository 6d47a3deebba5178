"""Lookup-table keys: canonical skips, SE width, text form, per-spec and per-space keys."""

from __future__ import annotations

import numpy as np
import pytest

from mnas.latency.lut.keys import (
    LayerKey,
    classifier_key,
    head_key,
    key_of_plan,
    keys_for_spec,
    layer_key,
    space_keys,
    stem_key,
)
from mnas.model.plan import plan_layers
from mnas.search_space import MNASNET_SPACE, BlockArgs, get_preset, get_search_space
from mnas.search_space.space import (
    DEFAULT_CONV_OPS,
    FactorizedSearchSpace,
    SkeletonBlock,
)


def _block(skip="identity", se_ratio=0.0, conv_op="mbconv", expand=6, kernel=3):
    if conv_op != "mbconv":
        expand = 1  # BlockArgs refuses an expansion for conv and dsconv
    return BlockArgs(
        num_repeat=1,
        kernel_size=kernel,
        stride=1,
        expand_ratio=expand,
        input_filters=8,
        output_filters=8,
        se_ratio=se_ratio,
        conv_op=conv_op,
        skip=skip,
    )


# -- canonical skips ------------------------------------------------------------


@pytest.mark.parametrize(
    "skip, c_in, c_out, stride, expected",
    [
        ("identity", 24, 24, 1, "add"),
        ("identity", 24, 24, 2, "none"),  # cannot apply when strided
        ("identity", 24, 40, 1, "none"),  # nor when the channels change
        ("identity", 24, 40, 2, "none"),
        ("pool", 24, 24, 1, "add"),  # pooling with window 1 is the identity
        ("pool", 24, 24, 2, "pool"),
        ("pool", 24, 40, 1, "pool"),  # a projecting pool skip
        ("pool", 24, 40, 2, "pool"),
        ("none", 24, 24, 1, "none"),
        ("none", 24, 40, 2, "none"),
    ],
)
def test_skip_is_canonical(skip, c_in, c_out, stride, expected):
    key = layer_key(_block(skip), c_in, c_out, stride, 28, "relu")
    assert key.skip == expected


def test_identity_and_pool_at_stride_one_share_one_entry():
    identity = layer_key(_block("identity"), 40, 40, 1, 14, "relu")
    pool = layer_key(_block("pool"), 40, 40, 1, 14, "relu")
    assert identity == pool
    assert identity.to_string() == pool.to_string()


@pytest.mark.parametrize(
    "c_in, ratio, expected",
    [(24, 0.25, 6), (40, 0.25, 10), (3, 0.25, 1), (16, 0.25, 4), (30, 0.1, 3)],
)
def test_se_filters_squeeze_from_the_input(c_in, ratio, expected):
    key = layer_key(_block(se_ratio=ratio), c_in, 80, 2, 28, "relu")
    assert key.se_filters == expected


def test_no_se_means_zero_se_filters_even_if_given():
    key = layer_key(_block(se_ratio=0.0), 24, 24, 1, 28, "relu", se_filters=6)
    assert key.se_filters == 0


def test_expand_ratio_only_counts_for_mbconv():
    for op in ("conv", "dsconv"):
        key = layer_key(_block(conv_op=op, expand=6), 24, 24, 1, 28, "relu")
        assert key.expand_ratio == 1
        assert key.expanded_channels == 24
    key = layer_key(_block(conv_op="mbconv", expand=6), 24, 24, 1, 28, "relu")
    assert key.expand_ratio == 6
    assert key.expanded_channels == 144


# -- text form -------------------------------------------------------------------


def test_to_string_of_a_layer():
    key = layer_key(
        _block("pool", se_ratio=0.25, expand=6, kernel=5), 24, 40, 2, 56, "relu"
    )
    assert key.to_string() == "layer:mbconv_e6_k5_s2_se6_pool:56x56x24->40:relu"
    assert str(key) == key.to_string()
    assert key.output_size == 28


def test_to_string_of_non_mbconv_layers_has_no_expansion():
    conv = layer_key(_block("none", conv_op="conv", kernel=3), 16, 24, 1, 7, "swish")
    assert conv.to_string() == "layer:conv_k3_s1_se0_none:7x7x16->24:swish"
    ds = layer_key(_block("identity", conv_op="dsconv", kernel=5), 16, 16, 1, 7, "relu")
    assert ds.to_string() == "layer:dsconv_k5_s1_se0_add:7x7x16->16:relu"


def test_to_string_of_stem_head_classifier():
    assert str(stem_key(32, 224, "relu")) == "stem:k3_s2:224x224x3->32:relu"
    assert str(head_key(320, 1280, 7, "relu6")) == "head:k1_s1:7x7x320->1280:relu6"
    assert str(classifier_key(1280, 7, 1000)) == "classifier:7x7x1280->1000"


def test_odd_size_output():
    assert stem_key(32, 225, "relu").output_size == 113
    assert LayerKey("layer", 8, 8, 7, stride=2, conv_op="conv").output_size == 4


def test_bad_kind_or_skip():
    with pytest.raises(ValueError) as info:
        LayerKey("block", 8, 8, 7)
    assert str(info.value) == (
        "kind must be one of ('stem', 'layer', 'head', 'classifier'), got 'block'"
    )
    with pytest.raises(ValueError) as info:
        LayerKey("layer", 8, 8, 7, skip="identity")
    assert str(info.value) == (
        "skip must be one of ('none', 'add', 'pool'), got 'identity'"
    )


# -- keys of one architecture ----------------------------------------------------


def test_keys_for_mnasnet_a1():
    spec = get_preset("mnasnet-a1")
    keys = keys_for_spec(spec)
    num_layers = sum(block.num_repeat for block in spec.blocks)
    assert num_layers == 16
    assert len(keys) == 1 + num_layers + 2
    assert [k.kind for k in keys] == ["stem"] + ["layer"] * 16 + ["head", "classifier"]
    assert str(keys[0]) == "stem:k3_s2:224x224x3->32:relu"
    assert str(keys[1]) == "layer:mbconv_e1_k3_s1_se0_none:112x112x32->16:relu"
    assert str(keys[2]) == "layer:mbconv_e6_k3_s2_se0_none:112x112x16->24:relu"
    assert str(keys[3]) == "layer:mbconv_e6_k3_s1_se0_add:56x56x24->24:relu"
    assert str(keys[4]) == "layer:mbconv_e3_k5_s2_se6_none:56x56x24->40:relu"
    assert str(keys[16]) == "layer:mbconv_e6_k3_s1_se0_none:7x7x160->320:relu"
    assert str(keys[-2]) == "head:k1_s1:7x7x320->1280:relu"
    assert str(keys[-1]) == "classifier:7x7x1280->1000"
    # The same layer repeated is the same key.
    assert keys[5] == keys[6]
    assert len(set(keys)) == 15


def test_keys_follow_the_layer_plan():
    spec = get_preset("mnasnet-b1")
    layers = plan_layers(spec, (160, 160))
    keys = keys_for_spec(spec, resolution=160, num_classes=10)
    assert keys[0].size == 160
    for key, layer in zip(keys[1:-2], layers, strict=True):
        assert key.size == layer.input_size[0]
        assert (key.in_channels, key.out_channels) == (
            layer.input_filters,
            layer.output_filters,
        )
        assert key.stride == layer.stride
        assert key.kernel == layer.block.kernel_size
    assert str(keys[-1]) == f"classifier:5x5x{spec.scaled_head_filters()}->10"


# -- the whole space ------------------------------------------------------------


def test_number_of_keys_of_the_mnasnet_space_is_pinned():
    # Measured when the key scheme was written: a change to it (or to the
    # space) changes every table, so it should be noticed.
    keys = space_keys(MNASNET_SPACE)
    assert len(keys) == 2685
    assert len(set(keys)) == len(keys)
    assert list(keys) == sorted(keys)
    kinds = [k.kind for k in keys]
    assert kinds.count("stem") == 1
    assert kinds.count("classifier") == 1
    assert kinds.count("head") == 3  # one per width of the last block


@pytest.mark.parametrize("space_name", ["mnasnet", "mnasnet-mbconv"])
@pytest.mark.parametrize("sharing", ["block", "layer"])
def test_every_sampled_architecture_is_covered(sharing, space_name):
    space = get_search_space(space_name)
    everything = set(space_keys(space))
    decisions = space.decisions_for(sharing)
    rng = np.random.default_rng(5)
    for _ in range(200 if sharing == "block" else 50):
        actions = [int(rng.integers(d.num_choices)) for d in decisions]
        spec = space.decode_for(sharing, actions)
        missing = [str(k) for k in keys_for_spec(spec) if k not in everything]
        assert missing == [], (actions, missing)


def test_the_first_blocks_own_ops_are_the_only_ones_keyed_there():
    space = get_search_space("mnasnet-mbconv")
    first = {str(k) for k in space_keys(space) if "112x112x32->" in str(k)}
    assert first and all(k.startswith("layer:mbconv_e1_") for k in first)
    assert len(space_keys(space)) < len(space_keys(MNASNET_SPACE))


def test_tiny_space_keys_are_counted_by_hand():
    space = FactorizedSearchSpace(
        name="tiny",
        version=1,
        skeleton=(SkeletonBlock(1, 16, 1, 1), SkeletonBlock(6, 24, 1, 2)),
        conv_ops=DEFAULT_CONV_OPS[:2],
        kernel_sizes=(3,),
        se_ratios=(0.0,),
        skips=("none", "identity"),
        filter_multipliers=(1.0,),
        layer_offsets=(0, 1),
        stem_filters=16,
        head_filters=32,
        resolution=32,
    )
    keys = space_keys(space, num_classes=10)
    text = sorted(str(k) for k in keys)
    # stem, 2 ops x (block0: slot0 16->16 none|add, slot1 add; block1: slot0
    # 16->24 s2 none, slot1 24->24 none|add), head, classifier.
    assert text == sorted(
        [
            "stem:k3_s2:32x32x3->16:relu",
            "layer:conv_k3_s1_se0_none:16x16x16->16:relu",
            "layer:conv_k3_s1_se0_add:16x16x16->16:relu",
            "layer:conv_k3_s2_se0_none:16x16x16->24:relu",
            "layer:conv_k3_s1_se0_none:8x8x24->24:relu",
            "layer:conv_k3_s1_se0_add:8x8x24->24:relu",
            "layer:dsconv_k3_s1_se0_none:16x16x16->16:relu",
            "layer:dsconv_k3_s1_se0_add:16x16x16->16:relu",
            "layer:dsconv_k3_s2_se0_none:16x16x16->24:relu",
            "layer:dsconv_k3_s1_se0_none:8x8x24->24:relu",
            "layer:dsconv_k3_s1_se0_add:8x8x24->24:relu",
            "head:k1_s1:8x8x24->32:relu",
            "classifier:8x8x32->10",
        ]
    )


def test_keys_take_the_plans_identity_skip_decision():
    # mnasnet-small's first layer: 8 channels in and out at stride 1, but the
    # block declares i16, so (as in the official network) no residual.
    spec = get_preset("mnasnet-small")
    layers = plan_layers(spec, (224, 224))
    assert not layers[0].has_identity_skip
    assert key_of_plan(layers[0], "relu").skip == "none"
    for layer in layers:
        if layer.block.skip == "identity":
            key = key_of_plan(layer, "relu")
            assert (key.skip == "add") == layer.has_identity_skip, layer.name
