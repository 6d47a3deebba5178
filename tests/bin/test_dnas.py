"""mnas-dnas run as the user runs it: flags, usage errors, the whole run (slow)."""

import json
import os
import subprocess
import sys

import pytest


def _run(*flag_args, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "mnas.bin.dnas", *flag_args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--beta=6"], "--beta was renamed: use --fbnet_beta"),
        (["--lam=0.5"], "--lam was renamed: use --proxyless_lambda"),
        (["--target_ms=7"], "--target_ms was renamed: use --proxyless_target_ms"),
        (["--epochs=2"], "--epochs was renamed: use --search_epochs"),
        (
            ["--warmup_epochs=0"],
            "--warmup_epochs was renamed: use --search_warmup_epochs",
        ),
        (["--final_epochs=2"], "--final_epochs was renamed: use --proxy_epochs"),
        (
            ["--temperature_decay=0.1"],
            "--temperature_decay was renamed: use --final_temperature",
        ),
    ],
)
def test_retired_flags_name_their_new_names(cli, args, message):
    assert cli.refusal(*args, status=2) == f"mnas-dnas: {message}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--search_epochs=2", "--search_warmup_epochs=2"],
         "--search_warmup_epochs must be <= 1, got 2"),
        (["--fbnet_beta=-1"], "--fbnet_beta must be >= 0, got -1.0"),
        (["--fbnet_alpha=nan"], "--fbnet_alpha must be a finite number, got nan"),
        (["--final_temperature=6"], "--final_temperature must be <= 5.0, got 6.0"),
        (["--final_temperature=0"], "--final_temperature must be > 0, got 0.0"),
        (["--theta_fraction=1"], "--theta_fraction must be in (0, 1), got 1.0"),
        # The proxy task's data kwargs are checked before the run, not in it.
        (["--max_train_examples=0"], "--max_train_examples must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_and_claim_nothing(cli, tmp_path, args, message):
    line = cli.refusal(f"--work_dir={tmp_path / 'run'}", *args)
    assert line == f"mnas-dnas: {message}"
    assert not (tmp_path / "run").exists()


def test_table_files_that_are_no_table_claim_nothing(cli, tmp_path):
    """A missing table, an empty file, garbage and a directory: one line each,
    and the work directory stays unclaimed, so the fixed rerun starts."""
    run = tmp_path / "run"
    missing = tmp_path / "none.jsonl"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\xff\xfe garbage\n")
    for lut, message in (
        (missing, f"no lookup table at {missing}; build one with "
         f"`mnas-latency --build_lut --lut={missing}`"),
        (empty, f"{empty} is empty: it has no header"),
        (garbage, f"{garbage}: line 1 is corrupt (Expecting value: line 1 "
         "column 1 (char 0)); only a torn last line is cut automatically: repair "
         "or remove this line by hand"),
        (tmp_path, f"{tmp_path} is a directory, not a lookup-table file"),
    ):  # fmt: skip
        line = cli.refusal(f"--work_dir={run}", f"--lut={lut}")
        assert line == f"mnas-dnas: {message}"
        assert not run.exists()


def test_work_dir_config_that_is_not_json_is_named(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_bytes(b"\xff")
    line = cli.refusal(f"--work_dir={run}", "--resume")
    assert line == (
        f"mnas-dnas: work directory config {str(run / 'config.json')!r} is not "
        "UTF-8 text: invalid start byte"
    )


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
        "--search_epochs=2",
        "--search_warmup_epochs=1",
        "--steps_per_epoch=2",
        "--proxy_epochs=1",
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
