"""mnas-describe's bad input: one line on stderr, a non-zero exit, no traceback.

mnas-describe never imports TensorFlow, so each run takes about a second.
"""

import pytest


@pytest.mark.parametrize(
    "content, message",
    [
        (b"[" * 100_000, "is nested too deeply"),
        (b"\xff\xfe{}", "is not UTF-8 text: invalid start byte"),
        (
            b'{"name": "x", "blocks": null}',
            ": blocks must be a list of block strings, got None",
        ),
        (
            b'{"name": 123, "blocks": ["r1_k3_s11_e1_i32_o16"]}',
            ": name must be a non-empty string of at most 128 printable characters",
        ),
        (
            b'{"resolution": ' + b"9" * 5000 + b"}",
            "is not valid JSON: Exceeds the limit (4300 digits)",
        ),
    ],
)
def test_bad_architecture_files(cli, tmp_path, content, message):
    path = tmp_path / "arch.json"
    path.write_bytes(content)
    line = cli.refusal(f"--arch={path}")
    assert line.startswith(f"mnas-describe: architecture file {str(path)!r}")
    assert message in line


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["--width_multiplier=inf"], 1, "--width_multiplier must be in (0, 8], got inf"),
        (["--depth_multiplier=1e9"], 1,
         "--depth_multiplier must be in (0, 8], got 1e+09"),
        (["--num_classes=x"], 2,
         "flag --num_classes=x: invalid literal for int() with base 10: 'x'"),
        (["--arch=mnasnet-a1", "extra"], 2, "unexpected arguments: extra"),
        (["--alpha=1"], 2, "Unknown command line flag 'alpha'"),
    ],
)  # fmt: skip
def test_bad_flags(cli, args, status, message):
    assert cli.refusal(*args, status=status) == f"mnas-describe: {message}"


def test_a_network_too_large_to_build_is_refused_from_the_spec_alone(cli):
    """r999999999 used to plan every layer (killed at 3 GB after 60 s)."""
    assert cli.refusal("--arch=r999999999_k3_s11_e1_i32_o16", timeout=30) == (
        "mnas-describe: num_repeat must be an integer in [1, 64], got 999999999 in "
        "block string 'r999999999_k3_s11_e1_i32_o16'"
    )
