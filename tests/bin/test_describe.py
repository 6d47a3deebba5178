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


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--arch=nope",
         "unknown preset 'nope'; known presets: efficientnet-b0, efficientnet-b1, "
         "efficientnet-b2, efficientnet-b3, efficientnet-b4, efficientnet-b5, "
         "efficientnet-b6, efficientnet-b7, mnasnet-a1, mnasnet-b1, mnasnet-d1, "
         "mnasnet-d1-320, mnasnet-small, mobilenet-v2 (or give block strings such "
         "as r1_k3_s11_e1_i32_o16_noskip,...)"),
        ("--arch=r1_k3_s11_e1_i32_oX",
         "malformed output filters (o) field 'oX' in block string "
         "'r1_k3_s11_e1_i32_oX' (expected o and ASCII digits, e.g. o24)"),
        ("--resolution=2", "--resolution must be >= 8, got 2"),
        ("--arch=/nonexistent/arch.json",
         "cannot read architecture file '/nonexistent/arch.json': No such file or "
         "directory"),
    ],
)  # fmt: skip
def test_bad_architectures(cli, flag, message):
    assert cli.refusal(flag) == f"mnas-describe: {message}"


def test_a_scaled_model_is_described(cli):
    result = cli.run("--arch=mnasnet-a1", "--width_multiplier=1.4")
    assert result.returncode == 0, result.stderr
    assert "width x1.4" in result.stdout
    assert result.stdout.rstrip().endswith("parameters: 6.152M   multiply-adds: 587.2M")


def test_a_network_too_large_to_build_is_refused_from_the_spec_alone(cli):
    """r999999999 used to plan every layer (killed at 3 GB after 60 s)."""
    assert cli.refusal("--arch=r999999999_k3_s11_e1_i32_o16", timeout=30) == (
        "mnas-describe: num_repeat must be an integer in [1, 64], got 999999999 in "
        "block string 'r999999999_k3_s11_e1_i32_o16'"
    )
