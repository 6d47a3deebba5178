"""Official checkpoint names: the facts quoted from real MnasNet checkpoints."""

from __future__ import annotations

import pytest

from mnas.model.official.names import (
    is_ignored,
    iter_model_names,
    layer_names,
    name_entries,
)
from mnas.search_space.presets import get_preset


def test_a1_names_match_names_quoted_from_real_checkpoints() -> None:
    names = {
        e.official
        for e in name_entries(get_preset("mnasnet-a1"), "mnasnet-a1", "keras")
    }
    # Quoted from a user's listing of an official MnasNet-A1 checkpoint.
    assert "mnasnet-a1/mnas_net_model/mnas_blocks_5/conv2d_16/kernel" in names
    # The frozen graph's output op is .../mnas_head/dense/BiasAdd.
    assert "mnasnet-a1/mnas_net_model/mnas_head/dense/kernel" in names
    assert "mnasnet-a1/mnas_stem/batch_normalization/gamma" in names


def test_keras_layout_numbers_convs_over_the_graph_in_construction_order() -> None:
    names = layer_names(get_preset("mnasnet-a1"), "keras")
    # 16 layers: 1 (no expand) + 2x2 + 3x4 (SE) + 4x2 + 2x4 + 3x4 + 1x2 = 47 convs.
    assert names["block0_layer0_project_conv"] == "mnas_net_model/mnas_blocks_0/conv2d"
    assert (
        names["block2_layer0_se_reduce"] == "mnas_net_model/mnas_blocks_3/se/conv2d_6"
    )
    assert names["stem_conv"] == "mnas_net_model/mnas_stem/conv2d_47"
    assert names["head_conv"] == "mnas_net_model/mnas_head/conv2d_48"
    assert (
        names["block6_layer0_dwconv"]
        == "mnas_net_model/mnas_blocks_15/depthwise_conv2d_15"
    )
    # Batch norms are TF1 layers: numbered per scope, no Keras model scope.
    assert names["block0_layer0_dw_bn"] == "mnas_blocks_0/batch_normalization"
    assert names["block0_layer0_project_bn"] == "mnas_blocks_0/batch_normalization_1"
    assert names["block1_layer0_project_bn"] == "mnas_blocks_1/batch_normalization_2"


def test_legacy_layout_numbers_per_scope_in_call_order() -> None:
    names = layer_names(get_preset("mnasnet-a1"), "legacy")
    assert names["block2_layer0_expand_conv"] == "mnas_blocks_3/conv2d"
    assert names["block2_layer0_se_reduce"] == "mnas_blocks_3/se/conv2d"
    assert names["block2_layer0_se_expand"] == "mnas_blocks_3/se/conv2d_1"
    assert names["block2_layer0_project_conv"] == "mnas_blocks_3/conv2d_1"
    assert names["stem_conv"] == "mnas_stem/conv2d"
    assert names["classifier"] == "mnas_head/dense"


def test_search_space_ops_have_no_official_name() -> None:
    spec = get_preset("mnasnet-a1").replace(
        blocks=(get_preset("mnasnet-a1").blocks[0].replace(conv_op="dsconv"),)
        + get_preset("mnasnet-a1").blocks[1:]
    )
    with pytest.raises(
        ValueError, match="block0_layer0 .* has no official counterpart"
    ):
        layer_names(spec, "keras")


def test_ignored_and_model_scope() -> None:
    assert is_ignored("global_step")
    assert is_ignored("a/mnas_stem/conv2d/kernel/RMSProp_1")
    assert not is_ignored("a/mnas_stem/conv2d/kernel")
    found = list(iter_model_names(["m/mnas_net_model/mnas_stem/conv2d/kernel", "m/x"]))
    assert found == ["m"]
