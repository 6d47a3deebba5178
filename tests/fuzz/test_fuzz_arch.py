"""Fuzzing architecture JSON: presets with fields replaced by valid values or
by values of the wrong type or range, and random JSON.

An accepted spec must be a network within the bounds (its layer plan has at
most MAX_LAYERS layers and no tensor wider than MAX_FILTERS, its analytic
parameter count is under a cap computed from the bounds alone); a spec whose
every field is valid may be refused only for its built size, and then only
when the size computed here from the fields says so.
"""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mnas.model.cost import compute_stats
from mnas.model.plan import plan_layers
from mnas.search_space import (
    MAX_DEPTH_DIVISOR,
    MAX_EXPAND_RATIO,
    MAX_FILTERS,
    MAX_KERNEL_SIZE,
    MAX_LAYERS,
    MAX_MULTIPLIER,
    MAX_NAME_LENGTH,
    MAX_REPEATS,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    ArchSpec,
    decode_block_string,
    get_preset,
    preset_names,
    round_filters,
    round_repeats,
)

NUM_CLASSES = 1000
#: Parameters of any accepted spec, from the bounds alone: per layer at most
#: (k^2 + 8) F^2 (a KxK conv, or an MBConv's expansion, squeeze-excite,
#: projection and pooling-skip convs, all at most F wide), plus stem, head and
#: classifier.
PARAMS_CAP = (
    MAX_LAYERS * (MAX_KERNEL_SIZE**2 + 8) * MAX_FILTERS**2
    + (MAX_FILTERS + 64) * MAX_FILTERS
    + (MAX_FILTERS + 1) * NUM_CLASSES
)

# -- values of the right and of the wrong kind, per field --------------------

_HUGE = st.integers(10**10, 10**4000)
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=1),
)
_NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _int_field(low: int, high: int, typical: int):
    valid = st.one_of(st.integers(low, min(high, typical)), st.integers(low, high))
    invalid = st.one_of(
        st.integers(-(10**6), low - 1),
        st.integers(high + 1, 10**9),
        st.integers(-(10**6), low - 1),
        st.integers(high + 1, 10**9),
        _HUGE,
        st.integers(low, high).map(float),
        st.integers(low, high).map(str),
        _NON_FINITE,
        _JUNK,
    )
    return valid, invalid


def _real_field(low: float, high: float, low_open: bool, high_open: bool):
    valid = st.floats(
        low, high, exclude_min=low_open, exclude_max=high_open, allow_nan=False
    )
    below = st.floats(-1e300, low, exclude_max=not low_open, allow_nan=False)
    above = st.floats(high, 1e300, exclude_min=not high_open, allow_nan=False)
    invalid = st.one_of(
        below,
        above,
        below,
        above,
        _HUGE,
        _NON_FINITE,
        st.floats(low, high, allow_nan=False).map(str),
        _JUNK,
    )
    return valid, invalid


def _choice_field(choices):
    invalid = st.one_of(
        st.text(max_size=10).filter(lambda t: t not in choices),
        st.sampled_from(choices).map(str.upper),
        _JUNK.filter(lambda v: not isinstance(v, str)),
        st.integers(),
    )
    return st.sampled_from(choices), invalid


@st.composite
def _valid_blocks(draw):
    """A chain of 1-12 valid block strings (input filters = previous output)."""
    count = draw(st.integers(1, 12))
    filters = draw(st.integers(1, 512))
    strings = []
    for _ in range(count):
        out = draw(st.one_of(st.integers(1, 512), st.integers(1, MAX_FILTERS)))
        op = draw(st.sampled_from(["", "_conv", "_dsconv"]))
        expand = 1 if op else draw(st.integers(1, MAX_EXPAND_RATIO))
        repeats = draw(st.one_of(st.integers(1, 6), st.integers(1, MAX_REPEATS)))
        kernel = draw(st.integers(0, MAX_KERNEL_SIZE // 2)) * 2 + 1
        stride = draw(st.sampled_from([1, 1, 2, 3, 4]))
        se = draw(st.sampled_from(["", "_se0.25", "_se1"]))
        skip = draw(st.sampled_from(["", "_noskip", "_poolskip"]))
        strings.append(
            f"r{repeats}_k{kernel}_s{stride}{stride}_e{expand}_i{filters}_o{out}"
            f"{se}{op}{skip}"
        )
        filters = out
    return strings


@st.composite
def _invalid_blocks(draw):
    valid = draw(_valid_blocks())
    index = draw(st.integers(0, len(valid) - 1))
    broken = list(valid)
    kind = draw(st.integers(0, 5))
    if kind == 0:
        broken[index] = draw(st.sampled_from(["r1_k\uff13_s11_e1_i8_o8", "", "x"]))
    elif kind == 1:
        broken[index] = draw(_JUNK.filter(lambda v: not isinstance(v, str)))
    elif kind == 2 and len(valid) > 1:  # a broken chain
        index = max(index, 1)
        broken[index] = broken[index].replace("_i", "_i9", 1)
    elif kind == 3:
        return draw(st.one_of(st.just([]), st.none(), st.text(max_size=20)))
    elif kind == 4:
        return broken * (MAX_LAYERS // len(broken) + 1)
    else:
        broken[index] = broken[index].replace("_k", "_k1" + "9" * 300, 1)
    return broken


FIELDS = {
    "stem_filters": _int_field(1, MAX_FILTERS, 64),
    "head_filters": _int_field(1, MAX_FILTERS, 2048),
    "resolution": _int_field(MIN_RESOLUTION, MAX_RESOLUTION, 320),
    "depth_divisor": _int_field(1, MAX_DEPTH_DIVISOR, 16),
    "head_scaling": _choice_field(("fixed", "scaled", "scaled_if_wider")),
    "activation": _choice_field(("relu", "relu6", "swish")),
    "dropout_rate": _real_field(0.0, 1.0, False, True),
    "drop_connect_rate": _real_field(0.0, 1.0, False, True),
    "batch_norm_momentum": _real_field(0.0, 1.0, False, True),
    "batch_norm_epsilon": _real_field(0.0, 1.0, True, False),
    "width_multiplier": _real_field(0.0, MAX_MULTIPLIER, True, False),
    "depth_multiplier": _real_field(0.0, MAX_MULTIPLIER, True, False),
    "name": (
        st.text(
            st.characters(codec="utf-8", exclude_categories=("C", "Z")),
            min_size=1,
            max_size=MAX_NAME_LENGTH,
        ),
        st.one_of(
            st.just(""),
            st.text(min_size=MAX_NAME_LENGTH + 1, max_size=MAX_NAME_LENGTH + 5),
            st.sampled_from(["a\nb", "\x00", "tab\there", "\u2028"]),
            st.integers(),
            _JUNK.filter(lambda v: not isinstance(v, str)),
        ),
    ),
    "blocks": (_valid_blocks(), _invalid_blocks()),
    "format_version": (st.just(1), st.sampled_from([0, 2, "1", None, True, [1]])),
}
#: Field -> the words its refusal may use.
NAMES = {
    "blocks": ("block",),
    "format_version": ("format version",),
}


@st.composite
def mutated_preset(draw):
    """A preset's dict with some fields replaced; returns it and the fields
    made invalid."""
    data = get_preset(draw(st.sampled_from(preset_names()))).to_dict()
    names = st.sampled_from(sorted(FIELDS))
    # Mostly one broken field, so that the refusal must name that one.
    broken = draw(st.sampled_from([0, 0, 0, 1, 1, 1, 1, 1, 1, 2]))
    invalid = set(draw(st.lists(names, min_size=broken, max_size=broken, unique=True)))
    changed = invalid | set(draw(st.lists(names, max_size=3)))
    for field in sorted(changed):
        valid, wrong = FIELDS[field]
        data[field] = draw(wrong if field in invalid else valid)
    if draw(st.integers(0, 9)) == 0:
        removed = draw(st.sampled_from(sorted(data)))
        del data[removed]  # its default applies (or, for blocks, a refusal)
        invalid.discard(removed)
    return data, invalid


def _oversized(data: dict) -> bool:
    """Whether the built network, computed from the (valid) fields, exceeds
    the bounds: the oracle of a size refusal."""
    blocks = [decode_block_string(s) for s in data["blocks"]]
    width = data.get("width_multiplier", 1.0)
    depth = data.get("depth_multiplier", 1.0)
    divisor = data.get("depth_divisor", 8)

    def built(filters: int) -> int:
        return filters if width == 1.0 else round_filters(filters, width, divisor)

    repeats = [round_repeats(b.num_repeat, depth) for b in blocks]
    if max(repeats) > MAX_REPEATS or sum(repeats) > MAX_LAYERS:
        return True
    stem = built(data.get("stem_filters", 32))
    head = data.get("head_filters", 1280)
    scaling = data.get("head_scaling", "fixed")
    if scaling == "scaled" or (scaling == "scaled_if_wider" and width > 1.0):
        head = built(head)
    if max(stem, head) > MAX_FILTERS:
        return True
    arriving = stem
    for block in blocks:
        widths = (arriving, built(block.input_filters), built(block.output_filters))
        if max(widths) * block.expand_ratio > MAX_FILTERS:
            return True
        arriving = widths[2]
    return False


def _check_network(spec: ArchSpec) -> None:
    """An accepted spec is a bounded network."""
    plan = plan_layers(spec, (spec.resolution, spec.resolution))
    assert 1 <= len(plan) <= MAX_LAYERS
    widest = max(
        max(layer.input_filters, layer.output_filters) * layer.block.expand_ratio
        for layer in plan
    )
    assert widest <= MAX_FILTERS
    assert spec.scaled_stem_filters() <= MAX_FILTERS
    assert spec.scaled_head_filters() <= MAX_FILTERS
    stats = compute_stats(spec, num_classes=NUM_CLASSES)
    assert 0 < stats.params <= PARAMS_CAP
    assert ArchSpec.from_json(spec.to_json()) == spec


@settings(settings.get_profile("mnas-fuzz"))
@given(mutated_preset(), st.booleans())
def test_mutated_architecture_json(fuzz, case, through_text):
    data, invalid = case
    if through_text:
        outcome = fuzz.run("arch JSON (mutated)", ArchSpec.from_json, json.dumps(data))
    else:
        outcome = fuzz.run("arch dict (mutated)", ArchSpec.from_dict, data)
    if invalid or "blocks" not in data:
        names = [n for field in invalid for n in NAMES.get(field, (field,))]
        fuzz.refused(outcome, names + ["missing 'blocks'"], data)
        return
    if outcome.accepted:
        assert not _oversized(data), f"accepted an oversized network: {data!r}"
        _check_network(outcome.value)
        return
    assert _oversized(data), f"valid {data!r} refused: {outcome.message}"
    fuzz.refused(outcome, ["after depth scaling", "after width scaling"], data)


_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=10),
        st.sampled_from(["r1_k3_s11_e1_i32_o16", "blocks", "resolution"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(sorted(FIELDS)), st.text(max_size=6)),
            children,
            max_size=5,
        ),
    ),
    max_leaves=12,
)


@settings(settings.get_profile("mnas-fuzz"))
@given(st.one_of(_JSON, st.binary(max_size=30)))
def test_random_json(fuzz, value):
    if isinstance(value, bytes):
        outcome = fuzz.run("arch JSON (random)", ArchSpec.from_json, value)
    else:
        outcome = fuzz.run("arch JSON (random)", ArchSpec.from_json, json.dumps(value))
        again = fuzz.run("arch dict (random)", ArchSpec.from_dict, value)
        assert again.accepted == outcome.accepted
    if outcome.accepted:
        _check_network(outcome.value)
    else:
        fuzz.refused(outcome, ["architecture", *FIELDS], value)


@st.composite
def near_the_bounds(draw):
    """Valid fields drawn towards the size bounds: many blocks, many repeats,
    wide filters, large multipliers."""
    count = draw(st.integers(1, 16))
    filters = draw(st.integers(1, MAX_FILTERS))
    strings = []
    for _ in range(count):
        out = draw(st.integers(1, MAX_FILTERS // draw(st.sampled_from([1, 4, 16]))))
        expand = draw(st.sampled_from([1, 1, 2, 6, MAX_EXPAND_RATIO]))
        repeats = draw(st.integers(1, MAX_REPEATS))
        strings.append(f"r{repeats}_k3_s11_e{expand}_i{filters}_o{out}")
        filters = out
    data = {"blocks": strings}
    for field in ("width_multiplier", "depth_multiplier"):
        if draw(st.booleans()):
            data[field] = draw(
                st.one_of(
                    st.floats(0.0, MAX_MULTIPLIER, exclude_min=True),
                    st.sampled_from([1.0, 2.0, MAX_MULTIPLIER]),
                )
            )
    for field in ("stem_filters", "head_filters"):
        if draw(st.booleans()):
            data[field] = draw(st.integers(1, MAX_FILTERS))
    data["head_scaling"] = draw(st.sampled_from(["fixed", "scaled", "scaled_if_wider"]))
    data["depth_divisor"] = draw(st.sampled_from([1, 8, MAX_DEPTH_DIVISOR]))
    return data


@settings(settings.get_profile("mnas-fuzz"))
@given(near_the_bounds())
def test_specs_near_the_size_bounds(fuzz, data):
    outcome = fuzz.run("arch dict (near the size bounds)", ArchSpec.from_dict, data)
    if outcome.accepted:
        assert not _oversized(data), f"accepted an oversized network: {data!r}"
        _check_network(outcome.value)
    else:
        assert _oversized(data), f"valid {data!r} refused: {outcome.message}"
        fuzz.refused(outcome, ["after depth scaling", "after width scaling"], data)
