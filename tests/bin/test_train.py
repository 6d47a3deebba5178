"""mnas-train's bad input: one line, a non-zero exit, before TensorFlow loads
(its real training runs are in tests/train/test_full.py)."""

import pytest


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--work_dir is required"),
        (["--work_dir=w", "--epochs=0"], "--epochs must be >= 1, got 0"),
        (["--work_dir=w", "--dropout_rate=1.5"],
         "--dropout_rate must be in [0, 1), got 1.5"),
        (["--work_dir=w", "--arch=nope"], "unknown preset 'nope'; known presets: "),
        (["--work_dir=w", "--resolution=1"], "--resolution must be >= 8, got 1"),
        (["--work_dir=w", "--lr_decay_rate=0"],
         "--lr_decay_rate must be in (0, 1], got 0.0"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line(cli, args, message):
    assert cli.refusal(*args).startswith(f"mnas-train: {message}")


def test_work_dir_config_that_is_not_json_is_named(cli, tmp_path):
    (tmp_path / "config.json").write_text('{"binary": "mnas-train", ')
    line = cli.refusal(f"--work_dir={tmp_path}")
    assert line.startswith(
        f"mnas-train: work directory config {str(tmp_path / 'config.json')!r} is "
        "not valid JSON: "
    )
