"""Decision: the controller's whole view of a space, compared by value."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import pytest

from mnas.search_space import MNASNET_SPACE, Decision
from mnas.search_space.space import FactorizedSearchSpace, SkeletonBlock


def test_num_choices_counts_the_labels():
    assert Decision("block0/kernel", "kernel", ("3", "5", "7")).num_choices == 3
    assert Decision("only", "k", ()).num_choices == 0


def test_decisions_compare_and_hash_by_value():
    """A restored controller compares its decisions with a rebuilt space's."""
    rebuilt = dataclasses.replace(MNASNET_SPACE).decisions()
    assert rebuilt == MNASNET_SPACE.decisions()
    assert len(set(rebuilt) | set(MNASNET_SPACE.decisions())) == len(rebuilt)
    kernel = Decision("block0/kernel", "kernel", ("3", "5"))
    assert kernel != Decision("block0/kernel", "kernel", ("3", "7"))
    assert kernel != Decision("block1/kernel", "kernel", ("3", "5"))


def test_a_decision_cannot_be_changed_after_creation():
    decision = MNASNET_SPACE.decisions()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.choices = ("conv",)  # type: ignore[misc]


# One block of a single layer: its layer offsets clamp to (1, 1, 2).
CLAMPED = FactorizedSearchSpace(
    name="clamped",
    version=1,
    skeleton=(SkeletonBlock(1, 16, 1, 1), SkeletonBlock(6, 24, 2, 2)),
)


@pytest.mark.parametrize("space", [MNASNET_SPACE, CLAMPED], ids=lambda s: s.name)
@pytest.mark.parametrize("sharing", ["block", "layer"])
def test_every_decision_of_one_kind_has_the_same_choice_count(space, sharing):
    """Controllers share one softmax head per kind, so a kind's size may not
    vary between blocks, even where a layer count is clamped at 1."""
    sizes = defaultdict(set)
    for decision in space.decisions_for(sharing):
        sizes[decision.kind].add(decision.num_choices)
    assert {kind: len(counts) for kind, counts in sizes.items()} == {
        kind: 1 for kind in sizes
    }


@pytest.mark.parametrize("space", [MNASNET_SPACE, CLAMPED], ids=lambda s: s.name)
def test_labels_tell_every_choice_apart(space):
    """Clamped layer counts and rounded widths repeat a value, not a label."""
    for decision in space.layerwise_decisions():
        assert len(set(decision.choices)) == decision.num_choices, decision
    layers = space.decisions()[5]
    assert layers.name == "block0/layers"
    if space is CLAMPED:
        assert layers.choices == ("-1=1", "+0=1", "+1=2")
