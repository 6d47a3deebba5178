"""mnas-search's handling of bad input, run as the user runs it."""

import json
import subprocess
import sys

import pytest

from mnas.search.reward import RewardConfig
from mnas.search.runner import SearchConfig


def _run(*flags, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "mnas.bin.search", "--latency_cache=", *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--target_ms=0"], "target latency must be > 0 ms, got 0.0"),
        (["--target_ms=-3"], "target latency must be > 0 ms, got -3.0"),
        (["--dataset=no_such_dataset_xyz"], "no_such_dataset_xyz"),
        (["--num_trials=0"], "num_trials must be >= 1, got 0"),
        (["--latency_backend=benchmark_model"], "needs --benchmark_model=PATH"),
        (
            ["--shared_batch_size=8"],
            "--shared_batch_size needs --evaluation=shared (got "
            "--evaluation=standalone)",
        ),
        (
            ["--evaluation=shared", "--latency=measured"],
            "--evaluation=shared scores latency from the lookup table: use "
            "--latency=verified (the top-k are also measured) or predicted",
        ),
        (
            ["--evaluation=shared", "--shared_resolution=4"],
            "--shared_resolution must be >= 8, got 4",
        ),
        (
            ["--evaluation=shared", "--time_budget_s=0"],
            "--time_budget_s must be >= 1, got 0.0",
        ),
        (["--outputs_interval_s=-1"], "--outputs_interval_s must be >= 0, got -1.0"),
    ],
)
def test_bad_flags_get_a_clear_message(tmp_path, flags, message):
    result = _run(f"--work_dir={tmp_path / 'run'}", *flags)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing started


def test_empty_image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    result = _run(f"--work_dir={tmp_path / 'run'}", f"--dataset=folder:{folder}")
    assert result.returncode != 0
    assert str(folder) in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_images(tmp_path):
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        (tmp_path / "images" / label / "x.png").write_bytes(b"not a png at all")
    result = _run(
        f"--work_dir={tmp_path / 'run'}", f"--dataset=folder:{tmp_path / 'images'}"
    )
    assert result.returncode != 0
    assert "x.png" in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_of_a_different_config_shows_the_difference(tmp_path):
    work_dir = tmp_path / "run"
    work_dir.mkdir()
    saved = SearchConfig(work_dir=str(work_dir), reward=RewardConfig("soft", 50.0))
    (work_dir / "config.json").write_text(json.dumps(saved.to_dict()))
    (work_dir / "trials.jsonl").write_text("")
    result = _run(f"--work_dir={work_dir}", "--resume", "--target_ms=7")
    assert result.returncode != 0
    assert (
        "cannot resume" in result.stderr
        and "belongs to a different config" in result.stderr
    )
    assert "reward.target_ms: saved 50.0, now 7.0" in result.stderr
    assert (
        json.loads((work_dir / "config.json").read_text()) == saved.to_dict()
    )  # untouched


def test_existing_work_dir_without_resume(tmp_path):
    work_dir = tmp_path / "run"
    work_dir.mkdir()
    (work_dir / "config.json").write_text(
        json.dumps(SearchConfig(str(work_dir)).to_dict())
    )
    result = _run(f"--work_dir={work_dir}")
    assert result.returncode != 0
    assert "already holds a search; pass --resume" in result.stderr


def test_predicted_latency_without_a_table_says_how_to_build_one(tmp_path):
    lut = tmp_path / "absent.lut.jsonl"
    result = _run(
        f"--work_dir={tmp_path / 'run'}", "--latency=predicted", f"--lut={lut}"
    )
    assert result.returncode != 0
    assert f"no lookup table at {lut}; build one with" in result.stderr
    assert "mnas-latency --build_lut" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_predicted_latency_refuses_a_table_of_another_backend(tmp_path):
    from mnas.latency.lut.table import LookupTable
    from mnas.testing.latency_models import synthetic_table

    synthetic = synthetic_table()
    lut = tmp_path / "synthetic.lut.jsonl"
    LookupTable.create(lut, synthetic.header)
    result = _run(
        f"--work_dir={tmp_path / 'run'}", "--latency=verified", f"--lut={lut}"
    )
    assert result.returncode != 0
    assert "was measured on backend [synthetic;" in result.stderr
    assert "not on [host;" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--alpha=-0.07"], "--alpha was renamed: use --reward_alpha"),
        (["--beta=-0.07"], "--beta was renamed: use --reward_beta"),
    ],
)
def test_retired_reward_flags_name_their_new_names(cli, args, message):
    assert cli.refusal(*args, status=2) == f"mnas-search: {message}"


def test_work_dir_config_that_is_not_json_is_named(cli, tmp_path):
    work_dir = tmp_path / "run"
    work_dir.mkdir()
    (work_dir / "config.json").write_text("{not json")
    line = cli.refusal(f"--work_dir={work_dir}", "--resume", "--latency_cache=")
    assert line.startswith(
        f"mnas-search: work directory config {str(work_dir / 'config.json')!r} is "
        "not valid JSON: "
    )


def test_a_file_that_is_no_table_is_refused_before_the_work_dir(cli, tmp_path):
    lut = tmp_path / "empty.lut.jsonl"
    lut.write_text("")
    line = cli.refusal(
        f"--work_dir={tmp_path / 'run'}",
        "--latency=predicted",
        f"--lut={lut}",
        "--latency_cache=",
    )
    assert line == f"mnas-search: {lut} is empty: it has no header"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_resume_with_a_corrupt_journal_is_one_line(cli, tmp_path):
    """A work directory whose config.json matches the flags but whose journal
    has a corrupt middle line: the journal's error, on one line."""
    from absl import flags

    from mnas.flags.latency import define_latency_flags, latency_config_from_flags
    from mnas.flags.search import define_search_flags, search_config_from_flags

    work_dir = tmp_path / "run"
    args = [f"--work_dir={work_dir}", "--latency_cache="]
    flag_values = flags.FlagValues()
    define_search_flags(flag_values)
    define_latency_flags(flag_values)
    flag_values(["mnas-search", *args])
    config = search_config_from_flags(
        flag_values, latency_config_from_flags(flag_values), None
    )
    work_dir.mkdir()
    (work_dir / "config.json").write_text(json.dumps(config.to_dict()))
    (work_dir / "trials.jsonl").write_text('{"trial_id": 0}\nnot json\n{}\n')
    line = cli.refusal(*args, "--resume", timeout=600)
    assert line.startswith("mnas-search: ")
    assert "trials.jsonl" in line
