"""A caller's callback sees the search as it happens, in order."""

from mnas.controller import ControllerConfig
from mnas.search.callbacks import Callback
from mnas.search.reward import RewardConfig
from mnas.search.runner import Search, SearchConfig
from mnas.search.workers.pool import InlinePool
from mnas.testing.fakes import FakeLatencyBackend, fake_evaluate


class _Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_search_begin(self, finished):
        self.events.append(("begin", finished))

    def on_trial_begin(self, record):
        self.events.append(("trial_begin", record.trial_id, record.status))

    def on_trial_end(self, record, ranked):
        best = ranked[0].trial_id if ranked else None
        self.events.append(("trial_end", record.trial_id, record.status, best))

    def on_controller_update(self, controller):
        self.events.append(("update", controller.num_updates))

    def on_search_end(self, ranked):
        self.events.append(("end", len(ranked)))


def test_callbacks_see_every_trial_update_and_the_end_in_order(tmp_path):
    config = SearchConfig(
        work_dir=str(tmp_path),
        num_trials=4,
        controller_kind="random",
        controller=ControllerConfig(batch_size=2),
        reward=RewardConfig("soft", target_ms=10.0),
    )

    def evaluate(task):
        return fake_evaluate({**task, "fake": {"fail_trials": [1]}})

    recorder = _Recorder()
    search = Search(
        config,
        InlinePool(evaluate, 1),
        FakeLatencyBackend(),
        log=lambda m: None,
        callbacks=[recorder],
    )
    search.run()
    ranked = search.completed()
    best = max(ranked, key=lambda r: r.reward).trial_id
    events = recorder.events
    assert events[0] == ("begin", 0) and events[-1] == ("end", 3)
    trial_events = [e for e in events if e[0].startswith("trial")]
    assert [e[:3] for e in trial_events] == [
        ("trial_begin", 0, "RUNNING"),
        ("trial_end", 0, "COMPLETED"),
        ("trial_begin", 1, "RUNNING"),
        ("trial_end", 1, "FAILED"),
        ("trial_begin", 2, "RUNNING"),
        ("trial_end", 2, "COMPLETED"),
        ("trial_begin", 3, "RUNNING"),
        ("trial_end", 3, "COMPLETED"),
    ]
    assert trial_events[-1][3] == best
    # A policy update after each full batch of 2 rewards (trial 1 failed).
    assert [e for e in events if e[0] == "update"] == [("update", 1)]
    update_at = events.index(("update", 1))
    assert events[update_at + 1] == (
        "trial_end",
        2,
        "COMPLETED",
        events[update_at + 1][3],
    )
