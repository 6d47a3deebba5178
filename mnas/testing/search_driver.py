"""Runs a small search with fakes; the crash test kills and restarts it.

Usage: python -m mnas.testing.search_driver WORK_DIR NUM_TRIALS SLEEP_S [--resume]
"""

import sys

from mnas.controller import ControllerConfig
from mnas.search.reward import RewardConfig
from mnas.search.runner import Search, SearchConfig
from mnas.search.workers.pool import InlinePool
from mnas.testing.fakes import FakeLatencyBackend, fake_evaluate


def main() -> None:
    work_dir, num_trials, sleep_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    resume = "--resume" in sys.argv
    config = SearchConfig(
        work_dir=work_dir,
        num_trials=num_trials,
        controller_kind="reinforce",
        controller=ControllerConfig(batch_size=3),
        reward=RewardConfig("soft", target_ms=10.0),
        num_workers=2,
    )

    def evaluate(task):
        return fake_evaluate({**task, "fake": {"sleep_s": sleep_s, "fail_trials": [4]}})

    search = Search(
        config, InlinePool(evaluate, 2), FakeLatencyBackend(), resume=resume
    )
    search.run()


if __name__ == "__main__":
    main()
