"""Every invalid value is refused where it is defined, naming the field and
its range: the shared checks, block strings, specs, JSON and action vectors."""

import json
import math

import numpy as np
import pytest

from mnas.search_space import (
    MAX_LAYERS,
    MNASNET_SPACE,
    ActionError,
    ArchSpec,
    BlockArgs,
    BlockStringError,
    ScalingCoefficients,
    ScalingError,
    SpecError,
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_text,
    decode_block_string,
    get_preset,
    parse_arch,
    scale,
    shown,
)

A1 = get_preset("mnasnet-a1")


def _message(error_type, function, *args, **kwargs) -> str:
    with pytest.raises(error_type) as info:
        function(*args, **kwargs)
    assert type(info.value) is error_type  # not a subclass's surprise
    return str(info.value)


# -- the shared checks -------------------------------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "n must be an integer in [1, 5], got 0"),
        (6, "n must be an integer in [1, 5], got 6"),
        (True, "n must be an integer in [1, 5], got True"),
        (2.0, "n must be an integer in [1, 5], got 2.0"),
        ("2", "n must be an integer in [1, 5], got '2'"),
        (10**80, "n must be an integer in [1, 5], got 1000000000000000000000000000000000000000... (81 characters)"),
    ],
)  # fmt: skip
def test_check_int_refuses_non_integers_and_out_of_range(value, message):
    assert _message(ValueError, check_int, "n", value, 1, 5) == message


def test_check_int_returns_python_ints_and_allows_none_only_when_asked():
    assert type(check_int("n", np.int64(3), 1, 5)) is int
    assert check_int("n", None, 1, 5, allow_none=True) is None
    assert _message(ValueError, check_int, "n", None, 1) == (
        "n must be an integer >= 1, got None"
    )
    assert _message(SpecError, check_int, "n", -1, 0, 9, error=SpecError) == (
        "n must be an integer in [0, 9], got -1"
    )


@pytest.mark.parametrize(
    "value, bounds, message",
    [
        (math.nan, {"low": 0.0}, "x must be a finite number >= 0, got nan"),
        (math.inf, {}, "x must be a finite number, got inf"),
        (-1e-3, {"low": 0.0, "low_open": True}, "x must be a finite number > 0, got -0.001"),
        (1.0, {"low": 0.0, "high": 1.0, "high_open": True}, "x must be a number in [0, 1), got 1.0"),
        ("0.5", {"low": 0.0, "high": 1.0}, "x must be a number in [0, 1], got '0.5'"),
        (False, {"low": 0.0, "high": 1.0}, "x must be a number in [0, 1], got False"),
        (10**400, {"high": 8.0}, "x must be a finite number <= 8, got 1000000000000000000000000000000000000000... (401 characters)"),
    ],
)  # fmt: skip
def test_check_real_refuses_non_numbers_non_finite_and_out_of_range(
    value, bounds, message
):
    assert _message(ValueError, check_real, "x", value, **bounds) == message


def test_check_real_keeps_python_numbers_and_converts_numpy_ones():
    assert check_real("x", 1, 0.0) == 1 and type(check_real("x", 1, 0.0)) is int
    assert type(check_real("x", np.float32(0.5), 0.0, 1.0)) is float


def test_check_choice_text_and_bool():
    assert _message(ValueError, check_choice, "op", ["a"], ("a", "b")) == (
        "op must be one of ('a', 'b'), got ['a']"
    )
    assert _message(ValueError, check_text, "name", "a\nb", 8) == (
        "name must be a non-empty string of at most 8 printable characters, got 'a\\nb'"
    )
    assert _message(ValueError, check_text, "name", "", 8) == (
        "name must be a non-empty string of at most 8 printable characters, got ''"
    )
    assert check_text("dir", None, 8, allow_none=True) is None
    assert _message(ValueError, check_bool, "flag", 1) == (
        "flag must be True or False, got 1"
    )


def test_shown_shortens_long_values():
    assert shown("abc") == "'abc'"
    assert (
        shown("x" * 1000)
        == "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (1002 characters)"
    )


# -- block strings and BlockArgs ----------------------------------------------


@pytest.mark.parametrize(
    "block_string, message",
    [
        # Other scripts' digits: Python's \d and int() accept them.
        ("r1_k\uff13_s11_e1_i32_o16",
         "malformed kernel (k) field 'k\uff13' in block string "
         "'r1_k\uff13_s11_e1_i32_o16' (expected k and ASCII digits, e.g. k3)"),
        ("r\u0661_k3_s11_e1_i32_o16",
         "malformed repeats (r) field 'r\u0661' in block string "
         "'r\u0661_k3_s11_e1_i32_o16' (expected r and ASCII digits, e.g. r2)"),
        # '$' would match before a trailing newline.
        ("r1\n_k3_s11_e1_i32_o16",
         "malformed repeats (r) field 'r1\\n' in block string "
         "'r1\\n_k3_s11_e1_i32_o16' (expected r and ASCII digits, e.g. r2)"),
        ("r999999999_k3_s11_e1_i32_o16",
         "num_repeat must be an integer in [1, 64], got 999999999 in block string "
         "'r999999999_k3_s11_e1_i32_o16'"),
        ("r1_k999999999_s11_e1_i32_o16",
         "kernel_size must be an integer in [1, 15], got 999999999 in block string "
         "'r1_k999999999_s11_e1_i32_o16'"),
        ("r1_k3_s55_e1_i32_o16",
         "stride must be an integer in [1, 4], got 5 in block string "
         "'r1_k3_s55_e1_i32_o16'"),
        ("r1_k3_s00_e1_i32_o16",
         "stride must be an integer in [1, 4], got 0 in block string "
         "'r1_k3_s00_e1_i32_o16'"),
        ("r1_k3_s11_e17_i32_o16",
         "expand_ratio must be an integer in [1, 16], got 17 in block string "
         "'r1_k3_s11_e17_i32_o16'"),
        ("r1_k3_s11_e1_i32_o16385",
         "output_filters must be an integer in [1, 16384], got 16385 in block "
         "string 'r1_k3_s11_e1_i32_o16385'"),
        ("r1_k3_s11_e1_i32_o16_se0.00001",
         "squeeze-excite ratio (se) must be in [0.0001, 1], got 0.00001 in block "
         "string 'r1_k3_s11_e1_i32_o16_se0.00001'"),
        ("r1_k3_s11_e1_i32_o16" + "_noskip" * 40,
         "block string must be at most 256 characters, got 300"),
    ],
)  # fmt: skip
def test_block_strings_out_of_grammar_or_bounds(block_string, message):
    assert _message(BlockStringError, decode_block_string, block_string) == message


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"se_ratio": "0.25"}, "se_ratio must be a number in [0, 1], got '0.25'"),
        ({"se_ratio": 1e-7}, "se_ratio must be 0 or in [0.0001, 1], got 1e-07"),
        ({"conv_op": ["conv"]}, "conv_op must be one of ('mbconv', 'conv', 'dsconv'), got ['conv']"),
        ({"skip": None}, "skip must be one of ('identity', 'none', 'pool'), got None"),
        ({"input_filters": 2.5}, "input_filters must be an integer in [1, 16384], got 2.5"),
    ],
)  # fmt: skip
def test_block_args_fields_have_types_and_ranges(changes, message):
    block = decode_block_string("r1_k3_s11_e1_i32_o16")
    assert _message(BlockStringError, block.replace, **changes) == message


def test_smallest_se_ratio_round_trips():
    block = decode_block_string("r1_k3_s11_e1_i32_o16_se0.0001")
    assert decode_block_string(block.to_string()) == block


# -- ArchSpec fields and the built network's size ------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"batch_norm_epsilon": -1e-3}, "batch_norm_epsilon must be a number in (0, 1], got -0.001"),
        ({"batch_norm_epsilon": math.nan}, "batch_norm_epsilon must be a number in (0, 1], got nan"),
        ({"batch_norm_momentum": 1.0}, "batch_norm_momentum must be a number in [0, 1), got 1.0"),
        ({"dropout_rate": "0.2"}, "dropout_rate must be a number in [0, 1), got '0.2'"),
        ({"drop_connect_rate": None}, "drop_connect_rate must be a number in [0, 1), got None"),
        ({"width_multiplier": 1e9}, "width_multiplier must be a number in (0, 8], got 1000000000.0"),
        ({"depth_multiplier": math.inf}, "depth_multiplier must be a number in (0, 8], got inf"),
        ({"resolution": 4}, "resolution must be an integer in [8, 2048], got 4"),
        ({"resolution": 224.0}, "resolution must be an integer in [8, 2048], got 224.0"),
        ({"stem_filters": 10**6}, "stem_filters must be an integer in [1, 16384], got 1000000"),
        ({"depth_divisor": 0}, "depth_divisor must be an integer in [1, 256], got 0"),
        ({"name": 123}, "name must be a non-empty string of at most 128 printable characters, got 123"),
        ({"name": "a\x00b"}, "name must be a non-empty string of at most 128 printable characters, got 'a\\x00b'"),
        ({"activation": None}, "activation must be one of ('relu', 'relu6', 'swish'), got None"),
        ({"blocks": None}, "blocks must be a sequence of BlockArgs, got NoneType"),
        ({"blocks": "r1_k3_s11_e1_i32_o16"}, "blocks must be a sequence of BlockArgs, got str"),
        ({"blocks": ["r1_k3_s11_e1_i32_o16"]}, "blocks must be BlockArgs, got str at index 0"),
    ],
)  # fmt: skip
def test_spec_fields_have_types_and_ranges(changes, message):
    assert _message(SpecError, A1.replace, **changes) == message


def test_unknown_fields_are_named():
    assert _message(SpecError, A1.replace, colour="red") == (
        "unknown architecture fields: colour"
    )


@pytest.mark.parametrize(
    "make, message",
    [
        # --depth_multiplier=1e9 would build every one of ~10^10 layers.
        (lambda: A1.scaled(1.0, 1e9),
         "depth_multiplier must be a number in (0, 8], got 1000000000.0"),
        (lambda: get_preset("efficientnet-b7").scaled(1.0, 8.0),
         "depth_multiplier must be a number in (0, 8], got 24.8"),
        (lambda: parse_arch("r64_k3_s11_e1_i32_o16").scaled(1.0, 1.5),
         "block 0 repeats after depth scaling must be <= 64, got 96 (num_repeat 64 "
         "x depth_multiplier 1.5, rounded up)"),
        (lambda: parse_arch(",".join(["r64_k3_s11_e1_i16_o16"] * 9)),
         "total layers after depth scaling must be <= 512, got 576 (the blocks' "
         "repeats x depth_multiplier 1)"),
        (lambda: parse_arch("r1_k3_s11_e16_i32_o2048"),
         "block 0 filters after width scaling must be <= 16384, got 32768 (input "
         "32, output 2048, arriving 32, x expand_ratio 16; width_multiplier 1)"),
        (lambda: parse_arch("r1_k3_s11_e1_i32_o4096").scaled(8.0),
         "block 0 filters after width scaling must be <= 16384, got 32768 (input "
         "256, output 32768, arriving 256, x expand_ratio 1; width_multiplier 8)"),
        (lambda: A1.replace(head_filters=16384, head_scaling="scaled").scaled(1.5),
         "head_filters after width scaling must be <= 16384, got 24576 "
         "(width_multiplier 1.5)"),
    ],
)  # fmt: skip
def test_the_built_network_is_bounded_by_the_spec_alone(make, message):
    assert _message(SpecError, make) == message


def test_the_largest_spec_within_bounds_is_accepted():
    blocks = ",".join(["r64_k15_s11_e1_i2048_o2048"] * 8)
    spec = parse_arch(blocks).replace(stem_filters=2048, resolution=2048)
    assert sum(b.num_repeat for b in spec.scaled_blocks()) == MAX_LAYERS


# -- JSON -----------------------------------------------------------------------


def _json(**changes) -> str:
    return json.dumps({**A1.to_dict(), **changes})


@pytest.mark.parametrize(
    "text, message",
    [
        (_json(blocks=None), "blocks must be a list of block strings, got None"),
        (_json(blocks="r1_k3_s11_e1_i32_o16"), "blocks must be a list of block strings, got 'r1_k3_s11_e1_i32_o16'"),
        (_json(blocks=[1]), "blocks[0]: block string must be a str, got int"),
        (_json(blocks=[["r1"]]), "blocks[0]: block string must be a str, got list"),
        (_json(name=123), "name must be a non-empty string of at most 128 printable characters, got 123"),
        (_json(resolution=4), "resolution must be an integer in [8, 2048], got 4"),
        (_json(resolution="224"), "resolution must be an integer in [8, 2048], got '224'"),
        (_json(width_multiplier={}), "width_multiplier must be a number in (0, 8], got {}"),
        (_json(batch_norm_epsilon=-0.001), "batch_norm_epsilon must be a number in (0, 1], got -0.001"),
        (_json(format_version=True), "architecture format version True is not supported (this mnas reads version 1)"),
        ('{"resolution": ' + "9" * 5000 + "}",
         "architecture is not valid JSON: Exceeds the limit (4300 digits) for integer "
         "string conversion: value has 5000 digits; use sys.set_int_max_str_digits() "
         "to increase the limit"),
        ("[" * 100_000, "architecture JSON is nested too deeply"),
        (b"\xff{}", "architecture is not valid JSON: 'utf-8' codec can't decode byte "
         "0xff in position 0: invalid start byte"),
        ('{"resolution": NaN, "blocks": ["r1_k3_s11_e1_i32_o16"]}',
         "resolution must be an integer in [8, 2048], got nan"),
        ("[]", "architecture JSON must be an object"),
        (None, "architecture JSON must be text, got NoneType"),
    ],
)  # fmt: skip
def test_json_of_the_wrong_type_or_range_is_named(text, message):
    with pytest.raises(SpecError) as info:
        ArchSpec.from_json(text)
    assert str(info.value) == message


def test_from_dict_refuses_a_non_mapping_and_non_string_keys():
    assert _message(SpecError, ArchSpec.from_dict, [1]) == (
        "an architecture must be a JSON object, got list"
    )
    with pytest.raises(SpecError) as info:
        ArchSpec.from_dict({**A1.to_dict(), 7: 1})
    assert str(info.value) == "unknown architecture fields: 7"


# -- action vectors ------------------------------------------------------------


@pytest.mark.parametrize(
    "actions, message",
    [
        (bytes(42), "actions must be a sequence of 42 integers, got bytes"),
        (bytearray(42), "actions must be a sequence of 42 integers, got bytearray"),
        ("0" * 42, "actions must be a sequence of 42 integers, got str"),
        ({i: 0 for i in range(42)}, "actions must be a sequence of 42 integers, got dict"),
        (set(range(42)), "actions must be a sequence of 42 integers, got set"),
        (iter([0] * 42), "actions must be a sequence of 42 integers, got list_iterator"),
        (np.zeros(42), "actions must be a 1-D integer array of 42 actions, got a float64 array of shape (42,)"),
        (np.zeros((1, 42), dtype=int), "actions must be a 1-D integer array of 42 actions, got a int64 array of shape (1, 42)"),
        (np.zeros(42, dtype=bool), "actions must be a 1-D integer array of 42 actions, got a bool array of shape (42,)"),
        ([True] + [0] * 41, "action for decision 'block0/conv_op' must be an integer, got True"),
        ([np.bool_(False)] + [0] * 41, "action for decision 'block0/conv_op' must be an integer, got np.False_"),
        ([0.0] * 42, "action for decision 'block0/conv_op' must be an integer, got 0.0"),
        (["0"] * 42, "action for decision 'block0/conv_op' must be an integer, got '0'"),
        ([0] * 41 + [10**100], "action 1000000000000000000000000000000000000000... (101 characters) for decision 'block6/layers' is out of range [0, 3)"),
        (range(10**12), "expected 42 actions for search space 'mnasnet', got 1000000000000"),
    ],
)  # fmt: skip
def test_action_vectors_of_the_wrong_kind_are_refused(actions, message):
    assert _message(ActionError, MNASNET_SPACE.decode, actions) == message


def test_integer_arrays_and_numpy_integers_decode():
    actions = MNASNET_SPACE.sample(0)
    spec = MNASNET_SPACE.decode(actions)
    assert MNASNET_SPACE.decode(np.array(actions, dtype=np.int8)) == spec
    assert MNASNET_SPACE.decode([np.int64(a) for a in actions]) == spec


# -- compound scaling ------------------------------------------------------------


def test_scaling_inputs_are_bounded():
    assert _message(ScalingError, scale, A1, 1e300) == (
        "phi must be a number in [0, 10], got 1e+300"
    )
    assert _message(ScalingError, scale, A1, 1, alpha=1e200) == (
        "alpha must be a number in [1, 4], got 1e+200"
    )
    assert _message(ScalingError, ScalingCoefficients, beta="1.1") == (
        "beta must be a number in [1, 4], got '1.1'"
    )
    assert _message(ScalingError, ScalingCoefficients().check, "0.1") == (
        "tolerance must be a finite number >= 0, got '0.1'"
    )
    assert _message(ScalingError, scale, "mnasnet-a1", 1) == (
        "arch must be an ArchSpec, got str"
    )
    # phi = 10 with the published coefficients leaves ArchSpec's bounds.
    assert _message(SpecError, scale, get_preset("efficientnet-b7"), 10) == (
        "resolution must be an integer in [8, 2048], got 2424"
    )
    assert _message(SpecError, scale, A1, 10, alpha=1.4, tolerance=1) == (
        "depth_multiplier must be a number in (0, 8], got 28.925465497599983"
    )


def test_block_args_refuses_bool_fields():
    with pytest.raises(BlockStringError) as info:
        BlockArgs(True, 3, 1, 1, 16, 16)
    assert str(info.value) == "num_repeat must be an integer in [1, 64], got True"
