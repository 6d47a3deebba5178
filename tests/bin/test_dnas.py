"""mnas-dnas run as the user runs it: flags, usage errors, the whole run (slow)."""

import json
import os
import subprocess
import sys

import pytest
from absl import flags
from absl.testing import flagsaver

from mnas.dnas.loop import DnasConfig


def _run(*flag_args, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "mnas.bin.dnas", *flag_args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_flags_make_the_config(tmp_path):
    import mnas.bin.dnas  # noqa: F401 - defines the flags
    from mnas.flags.dnas import dnas_config_from_flags

    with flagsaver.flagsaver():
        flags.FLAGS(
            [
                "mnas-dnas",
                f"--work_dir={tmp_path}",
                "--loss=proxyless",
                "--lam=0.5",
                "--sharing=layer",
                "--epochs=3",
                "--warmup_epochs=0",
                "--initial_temperature=2",
                "--temperature_decay=0.1",
                "--lut=table.jsonl",
                "--proxy_resolution=24",
                "--final_epochs=2",
                "--seed=3",
            ]
        )
        config = dnas_config_from_flags(flags.FLAGS)
    assert isinstance(config, DnasConfig)
    assert (config.loss, config.lam, config.pressure) == ("proxyless", 0.5, 0.5)
    assert (config.sharing, config.epochs, config.warmup_epochs) == ("layer", 3, 0)
    assert config.temperature(1) == pytest.approx(2 * 0.9048374180359595)
    assert config.lut_path == "table.jsonl"
    assert config.data["resolution"] == 24 and config.data["seed"] == 3
    assert config.trainer == {"epochs": 2}


@pytest.mark.parametrize(
    "flag_args, message",
    [
        (
            ["--lut=/no/such/table.jsonl"],
            "lookup table '/no/such/table.jsonl' does not exist; build it with "
            "`mnas-latency --build_lut --lut=/no/such/table.jsonl`",
        ),
        (["--epochs=2", "--warmup_epochs=2"], "warmup_epochs must lie in [0, "),
        (["--beta=-1"], "need alpha > 0, beta >= 0 and lam >= 0"),
    ],
)
def test_bad_flags_get_a_clear_message(tmp_path, flag_args, message):
    result = _run(f"--work_dir={tmp_path / 'run'}", *flag_args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def _synthetic_table_file(path):
    from mnas.latency.lut.table import LookupTable
    from mnas.search_space import MNASNET_SPACE
    from mnas.testing.latency_models import synthetic_table

    source = synthetic_table(MNASNET_SPACE)
    table = LookupTable.create(path, source.header)
    for key in source.keys():  # noqa: SIM118 - a table is not iterable
        table.add(key, source.get(key))
    return path


@pytest.mark.slow
def test_whole_run_then_resume_and_arch_loading(tmp_path):
    from mnas.flags.arch import load_arch

    lut = _synthetic_table_file(str(tmp_path / "synthetic.lut.jsonl"))
    work_dir = tmp_path / "run"
    args = [
        f"--work_dir={work_dir}",
        f"--lut={lut}",
        "--epochs=2",
        "--warmup_epochs=1",
        "--steps_per_epoch=2",
        "--final_epochs=1",
        "--deployment_resolution=64",
    ]
    result = _run(*args, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 2/2 |" in result.stdout
    assert "H(theta)" in result.stdout and "remaining" in result.stdout
    with open(work_dir / "best.json") as handle:
        best = json.load(handle)
    spec = load_arch(str(work_dir / "best.json"))
    assert list(spec.block_strings) == best["best"][0]["block_strings"]
    assert best["best"][0]["latency_ms"] > 0
    assert os.path.exists(work_dir / "theta.png")
    again = _run(*args, "--resume", timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming after epoch 2/2" in again.stdout
    with open(work_dir / "epochs.jsonl") as handle:
        assert [json.loads(line)["epoch"] for line in handle] == [1, 2]
