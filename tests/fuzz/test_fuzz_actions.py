"""Fuzzing action vectors: lists, tuples, arrays and bytes of random things.

A vector is valid exactly when it is a list, a tuple or a 1-D integer array
with one integer (not a bool) per decision, each within that decision's
choices; a valid vector must decode (and its spec encode back to a vector
that decodes to the same spec), any other must be refused naming the
actions or the decision.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mnas.search_space import MNASNET_SPACE, ArchSpec

SPACE = MNASNET_SPACE
SHARINGS = {sharing: SPACE.decisions_for(sharing) for sharing in ("block", "layer")}
_INT_DTYPES = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64)


def _valid(decisions, actions) -> bool:
    """The oracle, written from the documented contract."""
    if isinstance(actions, np.ndarray):
        if actions.ndim != 1 or actions.dtype.kind not in "iu":
            return False
    elif not isinstance(actions, list | tuple):
        return False
    if len(actions) != len(decisions):
        return False
    for value, decision in zip(actions, decisions):
        if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | np.integer
        ):
            return False
        if not 0 <= int(value) < decision.num_choices:
            return False
    return True


_JUNK_ELEMENT = st.one_of(
    st.integers(-3, -1),
    st.integers(3, 9),
    st.integers(10**9, 10**400),
    st.floats(),
    st.integers(0, 2).map(float),
    st.booleans(),
    st.booleans().map(np.bool_),
    st.text(max_size=2),
    st.none(),
    st.integers(0, 2).map(np.float32),
    st.lists(st.integers(0, 2), max_size=2),
)


@st.composite
def action_vector(draw):
    """A valid vector in some container, or one with a defect."""
    sharing = draw(st.sampled_from(sorted(SHARINGS)))
    decisions = SHARINGS[sharing]
    values = [draw(st.integers(0, d.num_choices - 1)) for d in decisions]
    defect = draw(
        st.sampled_from(
            ["none", "element", "length", "container"] * 2 + ["container"] * 2
        )
    )
    if defect == "element":
        for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
            values[draw(st.integers(0, len(values) - 1))] = draw(_JUNK_ELEMENT)
    elif defect == "length":
        cut = draw(st.integers(0, len(values) + 3))
        values = (values + values)[:cut]
    containers = ["list", "tuple", "array", "numpy ints"]
    if defect == "container":
        containers = ["bytes", "bytearray", "str", "dict", "set", "iterator",
                      "float array", "2-D array", "object array", "bool array",
                      "scalar"]  # fmt: skip
    container = draw(st.sampled_from(containers))
    if container == "tuple":
        return sharing, tuple(values)
    if container in ("array", "numpy ints") and all(
        isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63
        for v in values
    ):
        dtype = draw(st.sampled_from(_INT_DTYPES))
        try:
            array = np.array(values, dtype=dtype)
        except OverflowError:
            return sharing, values
        if (array.astype(object) != np.array(values, dtype=object)).any():
            return sharing, values  # wrapped around: not the vector drawn
        return sharing, array if container == "array" else [dtype(v) for v in values]
    if container == "bytes":
        return sharing, bytes(v % 256 for v in values if isinstance(v, int))
    if container == "bytearray":
        return sharing, bytearray(v % 256 for v in values if isinstance(v, int))
    if container == "str":
        return sharing, "".join(str(v) for v in values)
    if container == "dict":
        return sharing, dict(enumerate(values))
    if container == "set":
        return sharing, {v for v in values if isinstance(v, int)}
    if container == "iterator":
        return sharing, iter(values)
    if container == "float array":
        return sharing, np.array([v for v in values if isinstance(v, int)], float)
    if container == "2-D array":
        return sharing, np.array([values], dtype=object)
    if container == "object array":
        return sharing, np.array(values + [None], dtype=object)[:-1]
    if container == "bool array":
        return sharing, np.array([bool(v) for v in values if isinstance(v, int)])
    if container == "scalar":
        return sharing, draw(st.one_of(st.integers(), st.floats(), st.none()))
    return sharing, values


@settings(settings.get_profile("mnas-fuzz"))
@given(action_vector())
def test_action_vectors(fuzz, case):
    sharing, actions = case
    decisions = SHARINGS[sharing]
    valid = _valid(decisions, actions)
    described = repr(actions)[:200]
    outcome = fuzz.run(
        f"actions ({sharing} sharing)", SPACE.decode_for, sharing, actions
    )
    if not valid:
        fuzz.refused(outcome, ["actions", "action"], described)
        return
    assert outcome.accepted, f"valid {described} refused: {outcome.message}"
    spec = outcome.value
    assert ArchSpec.from_json(spec.to_json()) == spec
    if sharing == "block":  # layer-wise choices may not fit the block space
        assert SPACE.decode(SPACE.encode(spec)) == spec
        assert SPACE.validate_actions(actions) == tuple(int(a) for a in actions)
