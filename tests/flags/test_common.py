"""The shared rule of every binary: one-line errors, renamed flags, run-wide
flags, and each flag defined in one place."""

import ast
import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest
from absl import flags

from mnas.flags import common
from mnas.flags.common import (
    FlagError,
    Terminated,
    check_finite,
    check_folder,
    check_range,
    check_work_dir,
    define_output_dir_flag,
    define_resume_flag,
    define_seed_flag,
    define_work_dir_flag,
    expected_errors,
    flag_dict,
    guarded,
    one_line,
    read_json,
    renamed_flag_message,
    termination_raises,
)

FLAGS_DIR = pathlib.Path(common.__file__).parent


def test_every_flag_is_defined_in_one_place():
    """A flag name is declared by exactly one DEFINE_* call in mnas.flags, so it
    cannot mean two things in two binaries."""
    places: dict[str, list[str]] = {}
    for path in sorted(FLAGS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("DEFINE_")
            ):
                name = node.args[0]
                assert isinstance(name, ast.Constant), f"{path.name}: {ast.dump(name)}"
                places.setdefault(name.value, []).append(path.name)
    twice = {name: where for name, where in places.items() if len(where) > 1}
    assert twice == {}
    assert {"arch", "reward_alpha", "fbnet_alpha", "depth_coefficient"} <= set(places)
    assert {"alpha", "beta", "gamma", "lam", "final_epochs"}.isdisjoint(places)


def test_all_binaries_share_one_flag_registry():
    """Every binary imported into one process: no flag is defined twice, and the
    retired names are defined by none."""
    import mnas.bin.describe
    import mnas.bin.dnas
    import mnas.bin.eval
    import mnas.bin.export
    import mnas.bin.latency
    import mnas.bin.scale
    import mnas.bin.search
    import mnas.bin.train  # noqa: F401

    names = set(flags.FLAGS)
    assert {"proxy_epochs", "search_epochs", "epochs", "eval_batch_size"} <= names
    assert {"alpha", "beta", "gamma", "lam", "final_epochs", "nolatency"}.isdisjoint(
        names
    )


def test_one_line_joins_multi_line_messages():
    error = ValueError(
        "cannot resume: run belongs to a different config:\n  a: 1\n  b: 2"
    )
    assert one_line(error) == (
        "cannot resume: run belongs to a different config: a: 1; b: 2"
    )
    assert one_line(ValueError("")) == "ValueError"


def test_renamed_flags_in_every_spelling():
    renamed = {"alpha": "reward_alpha", "latency": "measure_latency"}
    assert renamed_flag_message(["--alpha=2"], renamed) == (
        "--alpha was renamed: use --reward_alpha"
    )
    assert renamed_flag_message(["-alpha", "2"], renamed) == (
        "--alpha was renamed: use --reward_alpha"
    )
    assert renamed_flag_message(["--nolatency"], renamed) == (
        "--nolatency was renamed: use --nomeasure_latency"
    )
    assert renamed_flag_message(["--alphabet=1", "x", "--", "--alpha"], renamed) is None


def test_expected_errors_include_lazy_modules_only_once_imported():
    from mnas.latency.errors import LatencyError

    found = expected_errors()
    assert ValueError in found and OSError in found and RecursionError in found
    assert LatencyError in found  # mnas.latency.errors is imported now
    assert KeyError not in found and TypeError not in found


def test_guarded_main_prints_one_line_for_expected_errors(capsys):
    def main(argv):
        raise FlagError("--x must be >= 1, got 0")

    with pytest.raises(SystemExit) as info:
        guarded("mnas-x", main)(["mnas-x"])
    assert info.value.code == 1
    assert capsys.readouterr().err == "mnas-x: --x must be >= 1, got 0\n"


def test_guarded_main_keeps_the_traceback_of_a_bug(capsys):
    bug = KeyError("bug")

    def main(argv):
        raise bug

    with pytest.raises(KeyError) as info:
        guarded("mnas-x", main)(["mnas-x"])
    assert info.value is bug  # not turned into a one-line exit
    assert info.traceback[-1].name == "main"
    assert capsys.readouterr().err == ""


def test_guarded_main_turns_ctrl_c_into_one_line(capsys):
    def main(argv):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as info:
        guarded("mnas-x", main)(["mnas-x"])
    assert info.value.code == 130
    assert capsys.readouterr().err == "mnas-x: interrupted\n"


def test_guarded_main_turns_sigterm_into_one_line_and_its_exit_status(capsys):
    def main(argv):
        raise Terminated(signal.SIGTERM)

    with pytest.raises(SystemExit) as info:
        guarded("mnas-x", main)(["mnas-x"])
    assert info.value.code == 143
    assert capsys.readouterr().err == "mnas-x: terminated by SIGTERM\n"


def test_sigterm_raises_terminated_once_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with termination_raises():
        with pytest.raises(Terminated) as info:
            os.kill(os.getpid(), signal.SIGTERM)
        assert isinstance(info.value, KeyboardInterrupt)  # stops as Ctrl-C does
        assert info.value.exit_status == 143
        os.kill(os.getpid(), signal.SIGTERM)  # a second one: the cleanup goes on
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_hangup_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with termination_raises():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (
                signal.SIG_DFL,
                signal.SIG_IGN,
            )
    finally:
        signal.signal(signal.SIGHUP, before)


_SLEEPING_BINARY = """
import sys, time
from mnas.flags.common import run_binary

def main(argv):
    try:
        print("ready", flush=True)
        time.sleep(600)
    finally:
        print("cleaned up", flush=True)

run_binary("mnas-x", main)
"""


@pytest.mark.parametrize(
    "signum, status, message",
    [
        (signal.SIGTERM, 143, "mnas-x: terminated by SIGTERM"),
        (signal.SIGINT, 130, "mnas-x: interrupted"),
        (signal.SIGHUP, 129, "mnas-x: terminated by SIGHUP"),
    ],
)
def test_a_binary_stops_on_a_signal_with_cleanup_and_one_line(signum, status, message):
    process = subprocess.Popen(
        [sys.executable, "-c", _SLEEPING_BINARY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == status
    assert stdout == "cleaned up\n"
    assert stderr == message + "\n"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{", "arch file {path!r} is not valid JSON: Expecting property name"),
        (b"\xff\xfe{}", "arch file {path!r} is not UTF-8 text: invalid start byte"),
        (b"[" * 100_000, "arch file {path!r} is nested too deeply"),
        (
            b"9" * 5000,
            "arch file {path!r} is not valid JSON: Exceeds the limit (4300 digits)",
        ),
    ],
)
def test_read_json_names_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "a.json"
    path.write_bytes(content)
    with pytest.raises(FlagError) as info:
        read_json(str(path), "arch file")
    assert str(info.value).startswith(message.format(path=str(path)))


def test_read_json_missing_file_and_directory(tmp_path):
    with pytest.raises(FlagError) as info:
        read_json(str(tmp_path / "no.json"), "arch file")
    assert str(info.value) == (
        f"cannot read arch file {str(tmp_path / 'no.json')!r}: No such file or directory"
    )
    with pytest.raises(FlagError) as info:
        read_json(str(tmp_path), "arch file")
    assert str(info.value) == f"cannot read arch file {str(tmp_path)!r}: Is a directory"


def test_check_work_dir(tmp_path):
    check_work_dir(str(tmp_path / "new"))  # a new folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(FlagError, match=r"^--work_dir is not a folder: "):
        check_work_dir(str(tmp_path / "file"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("not json")
    with pytest.raises(FlagError) as info:
        check_work_dir(str(run))
    assert str(info.value).startswith(
        f"work directory config {str(run / 'config.json')!r} is not valid JSON: "
    )
    (run / "config.json").write_text("[1]")
    with pytest.raises(FlagError) as info:
        check_work_dir(str(run))
    assert str(info.value) == (
        f"work directory config {str(run / 'config.json')!r} is not a JSON object"
    )
    (run / "config.json").write_text(json.dumps({"seed": 0}))
    check_work_dir(str(run))


def test_range_finite_and_folder_checks(tmp_path, parse):
    check_range("num_trials", 5, 1, 10)
    with pytest.raises(FlagError, match=r"^--num_trials must be >= 1, got 0$"):
        check_range("num_trials", 0, 1, 10)
    with pytest.raises(FlagError, match=r"^--num_trials must be <= 10, got 11$"):
        check_range("num_trials", 11, 1, 10)

    def define(flag_values):
        flags.DEFINE_float("rate", None, "", flag_values=flag_values)

    check_finite(parse(define), "rate")  # unset optional float
    with pytest.raises(FlagError, match=r"^--rate must be a finite number, got nan$"):
        check_finite(parse(define, "--rate=nan"), "rate")
    (tmp_path / "f").write_text("x")
    check_folder(None, "output_dir")
    with pytest.raises(FlagError, match=r"^--output_dir is not a folder: "):
        check_folder(str(tmp_path / "f"), "output_dir")


def test_run_wide_flags_and_defining_twice(parse):
    flag_values = parse(
        define_seed_flag,
        define_work_dir_flag,
        define_resume_flag,
        define_output_dir_flag,
        define_seed_flag,  # a second call is a no-op
        "--seed=4",
        "--work_dir=w",
        "--resume",
    )
    assert flag_dict(flag_values, ("seed", "work_dir", "resume", "output_dir")) == {
        "seed": 4,
        "work_dir": "w",
        "resume": True,
        "output_dir": None,
    }
