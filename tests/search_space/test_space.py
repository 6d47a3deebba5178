import dataclasses
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnas.search_space import (
    MNASNET_SPACE,
    ActionError,
    NotInSpaceError,
    get_preset,
    get_search_space,
    preset_names,
)
from mnas.search_space.space import DECISION_KINDS, decision_name

SPACE = MNASNET_SPACE


def test_decisions_are_the_controllers_view():
    decisions = SPACE.decisions()
    assert len(decisions) == 42
    assert [d.kind for d in decisions[:6]] == [
        "conv_op",
        "kernel",
        "se_ratio",
        "skip",
        "filters",
        "layers",
    ]
    assert [d.num_choices for d in decisions[:6]] == [5, 2, 2, 3, 3, 3]
    assert decisions[0].name == "block0/conv_op"
    assert decisions[-1].name == "block6/layers"
    assert decisions[0].choices == (
        "conv",
        "dsconv",
        "mbconv_e1",
        "mbconv_e3",
        "mbconv_e6",
    )


def test_size():
    assert SPACE.size() == 540**7


def test_decode_follows_the_mobilenet_v2_skeleton():
    actions = [2, 0, 0, 1, 1, 1] + [4, 1, 1, 2, 2, 2] * 6
    spec = SPACE.decode(actions)
    assert spec.block_strings[0] == "r1_k3_s11_e1_i32_o16"
    assert spec.block_strings[1] == "r3_k5_s22_e6_i16_o32_se0.25_poolskip"
    assert [b.stride for b in spec.blocks] == [1, 2, 2, 2, 1, 2, 1]
    assert [b.output_filters for b in spec.blocks] == [16, 32, 40, 80, 120, 200, 400]
    assert spec.blocks[0].num_repeat == 1


def test_layers_never_below_one():
    spec = SPACE.decode([0] * 42)
    assert spec.blocks[0].num_repeat == 1  # MobileNetV2's first block has 1 layer
    assert [b.num_repeat for b in spec.blocks] == [1, 1, 2, 3, 2, 2, 1]


@pytest.mark.parametrize("seed", range(200))
def test_sample_decode_encode_round_trip(seed):
    actions = SPACE.sample(seed)
    spec = SPACE.decode(actions)
    assert SPACE.decode(SPACE.encode(spec)).blocks == spec.blocks


def test_mobilenet_v2_lies_in_the_relu6_variant_and_round_trips():
    space = dataclasses.replace(SPACE, activation="relu6")
    spec = get_preset("mobilenet-v2")
    decoded = space.decode(space.encode(spec))
    assert decoded.blocks == spec.blocks
    assert decoded.scaled_head_filters() == spec.scaled_head_filters()


#: The presets the default space holds (in their own activation's variant).
INSIDE_THE_SPACE = {"mobilenet-v2"}


@pytest.mark.parametrize("name", preset_names())
def test_a_preset_is_encoded_exactly_or_refused_naming_it(name):
    spec = get_preset(name)
    space = dataclasses.replace(SPACE, activation=spec.activation)
    if name in INSIDE_THE_SPACE:
        assert space.decode(space.encode(spec)).blocks == spec.blocks
        return
    with pytest.raises(NotInSpaceError) as info:
        space.encode(spec)
    assert str(info.value).startswith(f"{name}: ")
    assert "search space 'mnasnet'" in str(info.value)


def test_presets_outside_the_space_say_why():
    with pytest.raises(NotInSpaceError) as info:
        SPACE.encode(get_preset("mnasnet-a1"))
    assert str(info.value) == (
        "mnasnet-a1: block 4 filters=112 is not among the choices (72, 96, 120) of "
        "search space 'mnasnet'"
    )
    with pytest.raises(NotInSpaceError, match="stem filters 8 is not in search space"):
        SPACE.encode(get_preset("mnasnet-small"))


@pytest.mark.parametrize(
    "actions, message",
    [
        ([0] * 41, "expected 42 actions for search space 'mnasnet', got 41"),
        ([0] * 43, "expected 42 actions for search space 'mnasnet', got 43"),
        (
            [0] * 6 + [5] + [0] * 35,
            "action 5 for decision 'block1/conv_op' is out of range [0, 5)",
        ),
        (
            [0] * 41 + [-1],
            "action -1 for decision 'block6/layers' is out of range [0, 3)",
        ),
        (
            [0, 1.5] + [0] * 40,
            "action for decision 'block0/kernel' must be an integer, got 1.5",
        ),
        (None, "actions must be a sequence of 42 integers, got NoneType"),
    ],
)
def test_bad_actions_name_the_decision(actions, message):
    with pytest.raises(ActionError) as info:
        SPACE.decode(actions)
    assert str(info.value) == message


@given(st.lists(st.integers(min_value=-3, max_value=8), min_size=0, max_size=50))
def test_random_vectors_only_raise_action_error(actions):
    try:
        spec = SPACE.decode(actions)
    except ActionError:
        return
    assert SPACE.decode(SPACE.encode(spec)).blocks == spec.blocks


def test_sample_is_uniform_per_decision():
    rng = np.random.default_rng(0)
    counts = Counter(SPACE.sample(rng)[0] for _ in range(5000))  # conv_op: 5 choices
    assert set(counts) == set(range(5))
    assert all(abs(c / 5000 - 0.2) < 0.03 for c in counts.values())


def test_sample_is_seeded():
    assert SPACE.sample(7) == SPACE.sample(7)
    assert SPACE.sample(7) != SPACE.sample(8)


def test_identity_changes_with_the_declaration():
    assert SPACE.identity().startswith("mnasnet/v1/")
    assert (
        dataclasses.replace(SPACE, kernel_sizes=(3, 5, 7)).identity()
        != SPACE.identity()
    )


def test_unknown_space():
    with pytest.raises(
        ActionError,
        match="unknown search space 'nasnet'; known spaces: mnasnet, mnasnet-mbconv$",
    ):
        get_search_space("nasnet")


def test_the_mbconv_space_is_mobilenet_v2_layers_with_searched_shapes():
    space = get_search_space("mnasnet-mbconv")
    assert space.skeleton == SPACE.skeleton
    first = {d.kind: d.choices for d in space.decisions()[:6]}
    later = {d.kind: d.choices for d in space.decisions()[6:12]}
    assert first["conv_op"] == ("mbconv_e1",)  # MobileNetV2's first block
    assert later["conv_op"] == ("mbconv_e3", "mbconv_e6")
    assert first["skip"] == later["skip"] == ("identity",)
    assert first["kernel"] == ("3", "5")
    assert space.identity().startswith("mnasnet-mbconv/v3/")
    assert space.identity() != SPACE.identity()
    assert [op.label for op in space.all_conv_ops()] == [
        "mbconv_e1",
        "mbconv_e3",
        "mbconv_e6",
    ]
    seen = set()
    for seed in range(20):
        spec = space.decode(space.sample(seed))
        assert (spec.blocks[0].conv_op, spec.blocks[0].expand_ratio) == ("mbconv", 1)
        ops = {(b.conv_op, b.expand_ratio, b.skip) for b in spec.blocks[1:]}
        assert ops <= {("mbconv", 3, "identity"), ("mbconv", 6, "identity")}
        seen |= ops
        assert space.decode(space.encode(spec)) == spec
    assert len(seen) == 2
    # An architecture with another op in the first block is not in the space.
    spec = space.decode(space.sample(0))
    six = dataclasses.replace(spec.blocks[0], expand_ratio=6)
    with pytest.raises(
        NotInSpaceError, match=r"block 0 conv_op=\('mbconv', 6\) is not"
    ):
        space.encode(dataclasses.replace(spec, blocks=(six, *spec.blocks[1:])))

    # Its architectures are also MnasNet-space architectures (a subspace).
    spec = space.decode(space.sample(3))
    assert SPACE.decode(SPACE.encode(spec)).blocks == spec.blocks


def test_a_space_without_a_first_block_override_keeps_its_identity():
    # Journals and tables written before the field existed stay valid.
    assert SPACE.first_block_conv_ops == ()
    assert SPACE.identity() == "mnasnet/v1/9944ff1f5359"


# -- per-layer sharing (FBNet) ------------------------------------------------


def _layerwise_from_block_actions(space, actions):
    chosen = dict(zip((d.name for d in space.decisions()), actions))
    return [
        chosen[f"{d.name.split('/')[0]}/{d.name.split('/')[-1]}"]
        for d in space.layerwise_decisions()
    ]


def test_layerwise_decisions_name_every_layer_slot():
    decisions = MNASNET_SPACE.layerwise_decisions()
    slots = [MNASNET_SPACE.max_layers(b) for b in range(7)]
    assert slots == [2, 3, 4, 5, 4, 4, 2]
    assert len(decisions) == 4 * sum(slots) + 2 * 7
    names = [d.name for d in decisions]
    assert names[:4] == [
        "block0/layer0/conv_op",
        "block0/layer0/kernel",
        "block0/layer0/se_ratio",
        "block0/layer0/skip",
    ]
    assert "block3/layer4/skip" in names and "block3/layer5/skip" not in names
    assert names[-2:] == ["block6/filters", "block6/layers"]
    assert MNASNET_SPACE.decisions_for("block") == MNASNET_SPACE.decisions()
    assert MNASNET_SPACE.decisions_for("layer") == decisions


@pytest.mark.parametrize("seed", range(5))
def test_shared_layerwise_choices_decode_like_block_choices(seed):
    actions = MNASNET_SPACE.sample(seed)
    layerwise = _layerwise_from_block_actions(MNASNET_SPACE, actions)
    assert MNASNET_SPACE.decode_layerwise(layerwise) == MNASNET_SPACE.decode(actions)
    assert MNASNET_SPACE.decode_for("layer", layerwise) == MNASNET_SPACE.decode(actions)


def test_layerwise_decode_splits_a_block_where_layers_differ():
    space = MNASNET_SPACE
    names = [d.name for d in space.layerwise_decisions()]
    actions = [0] * len(names)
    actions[names.index("block1/layers")] = 2  # 3 layers
    actions[names.index("block1/layer2/kernel")] = 1  # the last one k5
    spec = space.decode_layerwise(actions)
    strings = [b.to_string() for b in spec.blocks]
    assert strings[1:3] == [
        "r2_k3_s22_e1_i16_o24_conv_noskip",
        "r1_k5_s11_e1_i24_o24_conv_noskip",
    ]
    assert sum(b.num_repeat for b in spec.blocks[1:3]) == 3


def test_unknown_sharing_is_refused():
    with pytest.raises(ActionError, match="sharing must be one of"):
        MNASNET_SPACE.decisions_for("cell")


# -- the public traversal: block choices, decision names, slots --------------


def test_block_choices_are_relative_to_the_skeleton():
    choices = MNASNET_SPACE.block_choices(1)  # MobileNetV2: e6, o24, r2, s2
    assert tuple(choices) == DECISION_KINDS
    assert choices["filters"] == (24, 24, 32)  # 18 rounds up to 24, 30 to 32
    assert choices["layers"] == (1, 2, 3)
    assert [op.label for op in choices["conv_op"]] == list(
        MNASNET_SPACE.decisions()[0].choices
    )
    assert MNASNET_SPACE.block_choices(0)["layers"] == (1, 1, 2)  # never below 1


def test_decision_names_are_spelled_in_one_place():
    assert decision_name(3, "kernel") == "block3/kernel"
    assert decision_name(3, "kernel", 2) == "block3/layer2/kernel"
    assert decision_name(0, "skip", 0) == "block0/layer0/skip"
    block_names = [d.name for d in MNASNET_SPACE.decisions()]
    assert block_names[:6] == [decision_name(0, k) for k in DECISION_KINDS]


@pytest.mark.parametrize("sharing", ["block", "layer"])
def test_slots_name_only_decisions_of_their_sharing(sharing):
    slots = MNASNET_SPACE.slots(sharing)
    assert len(slots) == sum(MNASNET_SPACE.max_layers(b) for b in range(7))
    names = {d.name for d in MNASNET_SPACE.decisions_for(sharing)}
    for slot in slots:
        assert set(slot.layer_decisions) <= names
        assert {slot.out_decision, slot.layers_decision} <= names
        assert slot.in_decision is None or slot.in_decision in names
    # Every decision of the sharing is read by some slot.
    used = {n for s in slots for n in (*s.layer_decisions, s.out_decision)}
    used |= {s.layers_decision for s in slots}
    assert used == names


def test_slot_decisions_follow_the_sharing():
    block = MNASNET_SPACE.slots("block")[3]
    layer = MNASNET_SPACE.slots("layer")[3]
    assert (block.block, block.slot) == (layer.block, layer.slot) == (1, 1)
    assert block.kind_decisions["kernel"] == "block1/kernel"
    assert layer.kind_decisions["kernel"] == "block1/layer1/kernel"
    assert block.out_decision == layer.out_decision == "block1/filters"
    assert block.layers_decision == "block1/layers"


def test_slots_shapes_widths_and_existence():
    slots = MNASNET_SPACE.slots()
    first = slots[0]
    assert (first.block, first.slot, first.input_size, first.stride) == (0, 0, 112, 1)
    assert first.in_widths == (32,) and first.in_decision is None  # the stem
    assert first.out_widths == (16, 16, 24)
    assert first.width_pairs == ((32, 16), (32, 16), (32, 24))
    assert first.exists == (True, True, True)
    assert slots[1].exists == (False, False, True)  # block 0 has 1, 1 or 2 layers
    block1 = [s for s in slots if s.block == 1]
    assert [s.exists for s in block1] == [
        (True, True, True),
        (False, True, True),
        (False, False, True),
    ]
    assert block1[0].stride == 2 and block1[0].input_size == 112
    assert block1[0].output_size == 56
    assert block1[0].in_widths == (16, 16, 24)
    assert block1[0].in_decision == "block0/filters"
    assert set(block1[0].width_pairs) == {(i, o) for i in (16, 24) for o in (24, 32)}
    later = block1[1]
    assert (later.stride, later.input_size) == (1, 56)
    assert later.in_decision == later.out_decision == "block1/filters"
    assert later.width_pairs == ((24, 24), (24, 24), (32, 32))
    assert slots[-1].output_size == 7  # 224 / 32


def test_slots_refuse_an_unknown_sharing():
    with pytest.raises(ActionError) as info:
        MNASNET_SPACE.slots("cell")
    assert str(info.value) == "sharing must be one of ('block', 'layer'), got 'cell'"
