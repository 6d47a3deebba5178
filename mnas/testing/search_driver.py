"""Runs a small search with fakes; the crash and signal tests kill, stop and
restart it.

Usage: python -m mnas.testing.search_driver WORK_DIR NUM_TRIALS SLEEP_S
[--resume] [--subprocess] [--events PATH]

Trial 4 fails by design. ``--subprocess`` evaluates in real worker processes
(``SubprocessPool`` with ``mnas.testing.worker_fakes``; ``--events`` names the
file where they note each trial's start and end); without it, in-process. The
search runs under the binaries' stopping rule (``mnas.flags.common``): SIGTERM
stops it like Ctrl-C, with one line on stderr.
"""

import argparse
import json
import os
import sys

from mnas.controller import ControllerConfig
from mnas.flags.common import guarded, termination_raises
from mnas.search.reward import RewardConfig
from mnas.search.runner import Search, SearchConfig
from mnas.search.workers.pool import InlinePool, SubprocessPool
from mnas.testing.fakes import FakeLatencyBackend, fake_evaluate
from mnas.testing.worker_fakes import ENV_FAKE_TARGET, OPTIONS_VARIABLE

BINARY = "search_driver"
NUM_WORKERS = 2
FAIL_TRIALS = (4,)


def driver_config(work_dir: str, num_trials: int) -> SearchConfig:
    return SearchConfig(
        work_dir=work_dir,
        num_trials=num_trials,
        controller_kind="reinforce",
        controller=ControllerConfig(batch_size=3),
        reward=RewardConfig("soft", target_ms=10.0),
        num_workers=NUM_WORKERS,
    )


def driver_command(
    work_dir: str,
    num_trials: int,
    sleep_s: float,
    resume: bool = False,
    events: str | None = None,
) -> list[str]:
    """The command line that runs this driver; ``events`` (a file) turns on
    real worker processes (``--subprocess``)."""
    command = [
        sys.executable,
        "-m",
        "mnas.testing.search_driver",
        str(work_dir),
        str(num_trials),
        str(sleep_s),
    ]
    if events is not None:
        command += ["--subprocess", "--events", str(events)]
    if resume:
        command.append("--resume")
    return command


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=BINARY)
    parser.add_argument("work_dir")
    parser.add_argument("num_trials", type=int)
    parser.add_argument("sleep_s", type=float)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--subprocess", action="store_true")
    parser.add_argument("--events", default=None)
    return parser.parse_args(argv[1:])


def main(argv: list[str]) -> int:
    args = _parse(argv)
    options = {"sleep_s": args.sleep_s, "fail_trials": list(FAIL_TRIALS)}
    if args.subprocess:
        os.environ[OPTIONS_VARIABLE] = json.dumps({**options, "events": args.events})
        pool = SubprocessPool(
            ENV_FAKE_TARGET, NUM_WORKERS, os.path.join(args.work_dir, "workers")
        )
    else:

        def evaluate(task):
            return fake_evaluate({**task, "fake": options})

        pool = InlinePool(evaluate, NUM_WORKERS)
    config = driver_config(args.work_dir, args.num_trials)
    try:
        search = Search(config, pool, FakeLatencyBackend(), resume=args.resume)
    except BaseException:
        pool.close()
        raise
    search.run()
    return 0


if __name__ == "__main__":
    with termination_raises():
        sys.exit(guarded(BINARY, main)(sys.argv))
