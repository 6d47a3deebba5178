"""The shared loop with fake weights: what it samples, what it journals, and
a resume after an interruption (in-process; the SIGKILL test is test_crash)."""

import os
from collections import Counter

import pytest

import mnas.search.shared.weights as weights_module
from mnas.search.callbacks import Callback
from mnas.search.trial import Journal
from mnas.testing.shared import (
    FakeSharedWeights,
    tiny_shared_config,
    tiny_shared_search,
)

NUM_TRIALS = 12  # rl_delay 0.25: trials 0-2 uniform, then the controller


@pytest.fixture
def fake_weights(monkeypatch):
    made = []

    def factory(*args, **kwargs):
        made.append(FakeSharedWeights(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(weights_module, "SharedWeights", factory)
    return made


class _StopAfter(Callback):
    def __init__(self, trial_id):
        self.trial_id = trial_id

    def on_trial_end(self, record, ranked):
        if record.trial_id == self.trial_id:
            raise KeyboardInterrupt


def _journal(work_dir):
    return Journal.open(os.path.join(work_dir, "trials.jsonl"))


def test_uniform_paths_during_the_rl_delay_then_the_controllers(tmp_path, fake_weights):
    config = tiny_shared_config(str(tmp_path), NUM_TRIALS, controller_kind="random")
    search = tiny_shared_search(config)
    search.run()
    records = [r for r in _journal(str(tmp_path)).records if r.phase != "verify"]
    assert [r.phase for r in records] == ["warmup"] * 3 + ["search"] * 9
    assert [r.proposal_id for r in records] == [None] * 3 + list(range(9))
    # The uniform draws are a function of (seed, trial id): another seed
    # draws others.
    config = tiny_shared_config(
        str(tmp_path / "b"), NUM_TRIALS, controller_kind="random", seed=1
    )
    other = tiny_shared_search(config)
    other.run()
    again = [r for r in _journal(str(tmp_path / "b")).records if r.phase != "verify"]
    assert [r.actions for r in again[:3]] != [r.actions for r in records[:3]]
    assert search.controller.state_summary()["num_rewards"] == 9
    assert fake_weights[0].steps == list(range(NUM_TRIALS))


def test_every_trial_is_journaled_with_its_shared_accuracy_and_table_latency(
    tmp_path, fake_weights
):
    config = tiny_shared_config(str(tmp_path), NUM_TRIALS, controller_kind="random")
    search = tiny_shared_search(config)
    best = search.run()
    latest = _journal(str(tmp_path)).latest()
    shared = [r for r in latest.values() if r.phase != "verify"]
    predictor = search.scorer.predictor
    for record in shared:
        spec = search.space.decode(record.actions)
        assert record.accuracy == FakeSharedWeights.score(None, record.actions)
        assert record.predicted_ms == pytest.approx(
            predictor.predict(spec, resolution=64, num_classes=10)
        )
        assert record.latency_source == "predicted"
    verified = [r for r in latest.values() if r.phase == "verify"]
    assert len(verified) == 2 and all(r.status == "COMPLETED" for r in verified)
    assert all(r.latency_source == "measured" for r in verified)
    assert [b["trial_id"] for b in best] == sorted(
        (r.trial_id for r in verified), key=lambda t: -latest[t].reward
    )


def test_resume_after_an_interruption_duplicates_and_loses_nothing(
    tmp_path, fake_weights
):
    work_dir = str(tmp_path / "resumed")
    config = tiny_shared_config(work_dir, NUM_TRIALS)
    # Stopped after trial 6: its step is past the checkpoint at 4, and the
    # controller's batch of 3 (proposals 3-5) is half used.
    with pytest.raises(KeyboardInterrupt):
        tiny_shared_search(config, callbacks=[_StopAfter(6)]).run()
    resumed = tiny_shared_search(config, resume=True)
    resumed.run()

    straight = tiny_shared_search(tiny_shared_config(str(tmp_path / "straight"), 12))
    straight.run()

    journal = _journal(work_dir)
    finished = Counter(r.trial_id for r in journal.records if r.finished)
    assert finished == Counter({trial_id: 1 for trial_id in range(NUM_TRIALS + 2)})
    # Replayed steps 4-6, then went on: the weights took every step once, in
    # order, as the uninterrupted search's did.
    assert fake_weights[1].steps == list(range(4, NUM_TRIALS))
    assert fake_weights[1].chain == fake_weights[2].chain
    # Same architectures, same controller state, same rewards.
    mine = [(r.trial_id, r.actions, r.reward) for r in journal.latest().values()]
    theirs = [
        (r.trial_id, r.actions, r.reward)
        for r in _journal(str(tmp_path / "straight")).latest().values()
    ]
    assert mine == theirs
    assert resumed.controller.state_summary()["num_rewards"] == 9
    assert resumed.controller.num_pending == 0


def test_a_resume_finishes_a_begun_verification_without_sampling_again(
    tmp_path, fake_weights
):
    work_dir = str(tmp_path / "run")
    config = tiny_shared_config(work_dir, NUM_TRIALS)

    def stop_after_the_first_verification(message):
        if "(verifies " in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_shared_search(config, log=stop_after_the_first_verification).run()
    before = _journal(work_dir).latest()
    begun = {r.trial_id: r for r in before.values() if r.phase == "verify"}
    assert sorted(r.status for r in begun.values()) == ["COMPLETED", "RUNNING"]

    best = tiny_shared_search(config, resume=True, log=lambda message: None).run()

    journal = _journal(work_dir)
    latest = journal.latest()
    # No architecture was sampled again, and the same two were verified.
    assert [t for t, r in latest.items() if r.phase != "verify"] == list(
        range(NUM_TRIALS)
    )
    verified = {t: r for t, r in latest.items() if r.phase == "verify"}
    assert sorted(verified) == sorted(begun)
    assert {t: r.verifies for t, r in verified.items()} == {
        t: r.verifies for t, r in begun.items()
    }
    assert all(r.status == "COMPLETED" for r in verified.values())
    # The finished verification was kept, the interrupted one re-run once.
    finished = Counter(r.trial_id for r in journal.records if r.finished)
    assert all(finished[t] == 1 for t in verified)
    rerun = next(t for t, r in begun.items() if r.status == "RUNNING")
    assert verified[rerun].attempt == begun[rerun].attempt + 1
    assert sorted(b["trial_id"] for b in best) == sorted(verified)
