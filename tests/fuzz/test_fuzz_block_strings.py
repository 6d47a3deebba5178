"""Fuzzing block strings: field by field valid or broken, and random text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mnas.search_space import (
    MAX_EXPAND_RATIO,
    MAX_FILTERS,
    MAX_KERNEL_SIZE,
    MAX_REPEATS,
    MAX_STRIDE,
    decode_block_string,
    encode_block_string,
)

#: Field -> (lowest, highest) valid value.
BOUNDS = {
    "r": (1, MAX_REPEATS),
    "k": (1, MAX_KERNEL_SIZE),
    "s": (1, MAX_STRIDE),
    "e": (1, MAX_EXPAND_RATIO),
    "i": (1, MAX_FILTERS),
    "o": (1, MAX_FILTERS),
}
#: Field -> the words a refusal of it may use.
NAMES = {
    "r": ("repeats (r)", "num_repeat"),
    "k": ("kernel (k)", "kernel_size"),
    "s": ("stride (s)", "stride"),
    "e": ("expansion (e)", "expand_ratio"),
    "i": ("input filters (i)", "input_filters"),
    "o": ("output filters (o)", "output_filters"),
    "se": ("squeeze-excite ratio (se)", "se_ratio"),
    "op": ("conv op",),
    "skip": ("skip op",),
}
# Digits of other scripts that Python's \d, int() and float() accept.
UNICODE_DIGITS = "\uff13\u0663\u0969\u09e9\U0001d7d1\u2463\u00b3"


def _digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(str)


@st.composite
def broken_number(draw, low: int, high: int) -> str:
    """Digits that are not a valid value in [low, high]."""
    return draw(
        st.one_of(
            st.integers(high + 1, 10**12).map(str),
            st.integers(10**12, 10**300).map(str),
            st.just(str(low - 1)) if low > 0 else st.just("-1"),
            st.integers(low, high).map(lambda v: f"-{v}"),
            st.integers(low, high).map(lambda v: f"{v}.0"),
            st.integers(low, high).map(lambda v: f"+{v}"),
            st.integers(low, high).map(lambda v: f" {v}"),
            st.just(""),
            st.text(UNICODE_DIGITS, min_size=1, max_size=3),
            st.tuples(st.sampled_from(UNICODE_DIGITS), st.integers(low, high)).map(
                lambda pair: f"{pair[0]}{pair[1]}"
            ),
            st.tuples(st.integers(low, high), st.sampled_from(UNICODE_DIGITS)).map(
                lambda pair: f"{pair[0]}{pair[1]}"
            ),
        )
    )


@st.composite
def block_string(draw):
    """A block string with some fields valid and some broken; returns the text
    and the set of fields made invalid."""
    invalid: set[str] = set()
    tokens: list[str] = []
    conv_op = draw(st.sampled_from(["mbconv", "conv", "dsconv"]))
    # Mostly one broken field, so that the refusal must name that one.
    roll = draw(st.integers(0, 19))
    count = 0 if roll < 4 else 1 if roll < 17 else 2
    to_break = draw(st.permutations([*BOUNDS, "se", "op", "skip"]))[:count]
    for key, (low, high) in BOUNDS.items():
        mode = "valid"
        if key in to_break:
            mode = draw(st.sampled_from(["broken"] * 4 + ["missing", "twice"]))
        if key == "s":
            value = draw(_digits(low, high))
            text = value + value
            if mode == "broken":
                text = draw(
                    st.one_of(
                        st.sampled_from(["0", "5", "9"]).map(lambda d: d + d),
                        _digits(1, 4).map(lambda d: d),
                        st.tuples(_digits(1, 4), _digits(1, 4))
                        .filter(lambda t: t[0] != t[1])
                        .map("".join),
                        st.sampled_from(UNICODE_DIGITS).map(lambda d: d + d),
                    )
                )
        elif key == "k":
            text = str(draw(st.integers(0, (high - 1) // 2)) * 2 + 1)
            if mode == "broken":
                text = draw(
                    st.one_of(
                        broken_number(low, high),
                        st.integers(1, high // 2).map(lambda v: str(2 * v)),
                    )
                )
        elif key == "e" and conv_op != "mbconv":
            text = "1"
            if mode == "broken":
                text = draw(st.one_of(_digits(2, high), broken_number(low, high)))
        else:
            text = draw(_digits(low, high))
            if mode == "broken":
                text = draw(broken_number(low, high))
        if mode != "valid":
            invalid.add(key)
        if mode == "missing":
            continue
        tokens.append(key + text)
        if mode == "twice":
            tokens.append(key + draw(_digits(low, high)))
    se = "broken" if "se" in to_break else draw(st.sampled_from(["none", "valid"]))
    if se == "valid":
        tokens.append(
            "se" + draw(st.sampled_from(["0.25", "0.5", "1", ".125", "0.0001"]))
        )
    elif se == "broken":
        tokens.append(
            "se"
            + draw(
                st.sampled_from(
                    ["0", "1.5", "0.00001", "-0.25", "0.2\uff15", "1e-3", ""]
                )
            )
        )
        invalid.add("se")
    if conv_op != "mbconv":
        tokens.append(conv_op)
        if "op" in to_break:
            tokens.append(draw(st.sampled_from(["conv", "dsconv"])))
            invalid.add("op")
    skip = draw(st.sampled_from(["", "noskip", "poolskip"]))
    if skip:
        tokens.append(skip)
        if "skip" in to_break:
            tokens.append(draw(st.sampled_from(["noskip", "poolskip"])))
            invalid.add("skip")
    order = draw(st.permutations(tokens))
    return "_".join(order), invalid


def _check_accepted(block, text):
    assert text.strip().isascii(), f"accepted non-ASCII block string {text!r}"
    canonical = encode_block_string(block)
    assert canonical.isascii()
    assert decode_block_string(canonical) == block
    for field, key in (
        ("num_repeat", "r"),
        ("kernel_size", "k"),
        ("stride", "s"),
        ("expand_ratio", "e"),
        ("input_filters", "i"),
        ("output_filters", "o"),
    ):
        low, high = BOUNDS[key]
        value = getattr(block, field)
        assert type(value) is int and low <= value <= high, (field, value, text)
    assert block.kernel_size % 2 == 1
    assert block.se_ratio == 0 or 1e-4 <= block.se_ratio <= 1


@settings(settings.get_profile("mnas-fuzz"))
@given(block_string())
def test_block_strings_field_by_field(fuzz, case):
    text, invalid = case
    outcome = fuzz.run("block string (fields)", decode_block_string, text)
    if not invalid:
        assert outcome.accepted, f"valid {text!r} refused: {outcome.message}"
        _check_accepted(outcome.value, text)
        return
    names = [name for key in invalid for name in NAMES[key]]
    names += ["given twice", "is missing", "block string must be at most"]
    fuzz.refused(outcome, names, text)


_ALPHABET = st.sampled_from(
    list("rkseio_0123456789.noskippoolconvds -+\n\t") + list(UNICODE_DIGITS)
)


@settings(settings.get_profile("mnas-fuzz"))
@given(
    st.one_of(
        st.text(max_size=60),
        st.text(_ALPHABET, max_size=60),
        st.binary(max_size=40),
        st.integers(),
        st.none(),
        st.lists(st.text(max_size=5), max_size=3),
    )
)
def test_random_block_strings(fuzz, value):
    outcome = fuzz.run("block string (random)", decode_block_string, value)
    if outcome.accepted:
        _check_accepted(outcome.value, value)
    else:
        fuzz.refused(outcome, ["block string", *sum(NAMES.values(), ())], value)
