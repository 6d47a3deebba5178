"""--arch and its multipliers -> ArchSpec, and the refusals of bad values."""

import json

import pytest

from mnas.flags.arch import (
    arch_from_flags,
    define_arch_flags,
    define_search_space_flag,
    load_arch,
)
from mnas.search_space import SpecError, get_preset, get_search_space
from mnas.search_space.scaling import scale


def test_preset_scaled_with_resolution_and_classes(parse):
    flag_values = parse(
        define_arch_flags,
        "--arch=mnasnet-a1",
        "--width_multiplier=0.75",
        "--resolution=192",
        "--num_classes=10",
    )
    spec = arch_from_flags(flag_values)
    assert spec == get_preset("mnasnet-a1").scaled(0.75, 1.0).replace(resolution=192)
    assert flag_values.num_classes == 10


def test_default_and_optional_arch(parse):
    flag_values = parse(define_arch_flags)
    assert arch_from_flags(flag_values, default="mnasnet-small") == get_preset(
        "mnasnet-small"
    )
    assert arch_from_flags(flag_values, required=False) is None
    with pytest.raises(SpecError) as info:
        arch_from_flags(flag_values)
    assert str(info.value) == (
        "--arch is required (a preset, block strings or an arch .json file)"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--width_multiplier=inf"], "--width_multiplier must be in (0, 8], got inf"),
        (["--width_multiplier=0"], "--width_multiplier must be in (0, 8], got 0"),
        (["--depth_multiplier=1e9"], "--depth_multiplier must be in (0, 8], got 1e+09"),
        (["--depth_multiplier=nan"], "--depth_multiplier must be in (0, 8], got nan"),
        (["--resolution=4"], "--resolution must be >= 8, got 4"),
        (["--resolution=100000"], "--resolution must be <= 2048, got 100000"),
        (["--num_classes=0"], "--num_classes must be >= 1, got 0"),
        (["--num_classes=1000000"], "--num_classes must be <= 100000, got 1000000"),
    ],
)
def test_bad_numbers_are_refused_before_anything_is_built(parse, args, message):
    flag_values = parse(define_arch_flags, "--arch=mnasnet-a1", *args)
    with pytest.raises(ValueError) as info:
        arch_from_flags(flag_values)
    assert str(info.value) == message


def test_best_json_and_weights_json_give_their_architecture(tmp_path):
    # Scaled: resolution, multipliers and dropout travel with the blocks.
    spec = scale(get_preset("mnasnet-a1"), 1)
    best = tmp_path / "best.json"
    best.write_text(
        json.dumps(
            {
                "search_space": get_search_space().identity(),
                "best": [{"rank": 1, "arch": spec.to_dict()}],
            }
        )
    )
    assert load_arch(str(best)) == spec
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"arch": spec.to_dict(), "num_classes": 3}))
    assert load_arch(str(weights)) == spec


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"name": "x", "blocks": null}',
            ": blocks must be a list of block strings, got None",
        ),
        (
            '{"name": 123, "blocks": []}',
            ": name must be a non-empty string of at most 128 printable characters, "
            "got 123",
        ),
        (
            '{"resolution": "224", "blocks": []}',
            ": resolution must be an integer in [8, 2048], got '224'",
        ),
        (
            '{"dropout_rate": true, "blocks": []}',
            ": dropout_rate must be a number in [0, 1), got True",
        ),
        (
            '{"blocks": ["r1_k3_s11_e1_i32_o16", "r1_k\uff13_s11_e1_i16_o16"]}',
            ": blocks[1]: malformed kernel (k) field 'k\uff13' in block string "
            "'r1_k\uff13_s11_e1_i16_o16' (expected k and ASCII digits, e.g. k3)",
        ),
        ("[]", "must hold a JSON object"),
        ('{"best": []}', "lists no best entry"),
        ("{", "is not valid JSON: "),
    ],
)
def test_bad_architecture_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "arch.json"
    path.write_text(content)
    with pytest.raises(SpecError) as info:
        load_arch(str(path))
    assert str(info.value).startswith(f"architecture file {str(path)!r}")
    assert message in str(info.value)


def test_the_default_search_space_flag_names_a_known_space(parse):
    name = parse(define_search_space_flag).search_space
    assert get_search_space(name).name == name


def test_an_arch_file_of_another_format_version_is_refused(tmp_path):
    data = get_preset("mnasnet-a1").to_dict()
    data["format_version"] = 99
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError) as info:
        load_arch(str(path))
    assert str(info.value) == (
        f"architecture file {str(path)!r}: architecture format version 99 is not "
        "supported (this mnas reads version 1)"
    )


@pytest.mark.parametrize(
    "identity, reason",
    [
        ("mnasnet/v0/000000000000", "comes from search space "
         "'mnasnet/v0/000000000000'; this mnas has {current!r}"),
        ("resnet/v1/abc", "comes from unknown search space 'resnet/v1/abc'"),
    ],
)  # fmt: skip
def test_best_json_of_another_search_space_is_refused_naming_both(
    tmp_path, identity, reason
):
    path = tmp_path / "best.json"
    arch = get_preset("mnasnet-small").to_dict()
    path.write_text(
        json.dumps({"search_space": identity, "best": [{"rank": 1, "arch": arch}]})
    )
    with pytest.raises(SpecError) as info:
        load_arch(str(path))
    current = get_search_space().identity()
    assert str(info.value) == (
        f"architecture file {str(path)!r} " + reason.format(current=current)
    )
