import json
import os

import pytest

from mnas.fakes import FakeLatencyBackend, fake_evaluate
from mnas.journal import Journal
from mnas.reward import RewardConfig
from mnas.search import Search, SearchConfig, SearchConfigError
from mnas.workers import InlinePool


def _config(work_dir, **overrides):
    values = dict(
        work_dir=str(work_dir),
        num_trials=8,
        controller_kind="reinforce",
        controller={"batch_size": 3},
        reward=RewardConfig("soft", target_ms=10.0),
        num_workers=2,
    )
    values.update(overrides)
    return SearchConfig(**values)


def _search(config, resume=False, fail_trials=(), logs=None):
    def evaluate(task):
        return fake_evaluate({**task, "fake": {"fail_trials": list(fail_trials)}})

    log = logs.append if logs is not None else (lambda message: None)
    return Search(
        config,
        InlinePool(evaluate, config.num_workers),
        FakeLatencyBackend(),
        resume=resume,
        log=log,
    )


def _final_states(work_dir):
    journal = Journal.open(os.path.join(work_dir, "trials.jsonl"))
    return journal, journal.latest()


def test_search_writes_every_output(tmp_path):
    search = _search(_config(tmp_path), fail_trials=[2])
    best = search.run()
    journal, latest = _final_states(str(tmp_path))
    assert sorted(latest) == list(range(8))
    assert [latest[i].status for i in range(8)].count("FAILED") == 1
    assert latest[2].status == "FAILED" and "loss became NaN" in latest[2].error
    finished = [r for r in journal.records if r.finished]
    assert sorted(r.trial_id for r in finished) == list(range(8))  # each once
    # Failed trials never reach the controller: 7 rewards, 2 full batches of 3.
    summary = search.controller.state_summary()
    assert summary["num_rewards"] == 7 and summary["num_failed"] == 1
    assert search.controller.num_updates == 2
    # best.json is the top-3 by reward, and only their models are kept.
    rewards = sorted(
        (r.reward for r in latest.values() if r.reward is not None), reverse=True
    )
    assert [entry["reward"] for entry in best] == rewards[:3]
    with open(tmp_path / "best.json") as handle:
        saved = json.load(handle)
    assert saved["best"] == best and saved["num_completed"] == 7
    assert sorted(os.listdir(tmp_path / "models")) == sorted(
        os.path.basename(entry["tflite"]) for entry in best
    )
    for name in ("config.json", "pareto.png", "trials.jsonl"):
        assert (tmp_path / name).is_file()
    assert os.listdir(tmp_path / "tensorboard")
    assert any(name.startswith("ckpt") for name in os.listdir(tmp_path / "controller"))
    with open(tmp_path / "config.json") as handle:
        assert json.load(handle)["reward"]["target_ms"] == 10.0


def test_existing_work_dir_needs_resume(tmp_path):
    _search(_config(tmp_path, num_trials=2)).run()
    with pytest.raises(
        SearchConfigError, match="already holds a search; pass --resume"
    ):
        _search(_config(tmp_path, num_trials=2))


def test_resume_refuses_a_different_config_and_shows_the_difference(tmp_path):
    _search(_config(tmp_path, num_trials=2)).run()
    changed = _config(
        tmp_path, num_trials=4, reward=RewardConfig("soft", target_ms=20.0)
    )
    with pytest.raises(SearchConfigError) as info:
        _search(changed, resume=True)
    message = str(info.value)
    assert "belongs to a different config" in message
    assert "reward: saved" in message and "'target_ms': 10.0" in message
    assert "'target_ms': 20.0" in message


def test_resume_extends_the_search_without_rerunning(tmp_path):
    _search(_config(tmp_path, num_trials=4)).run()
    _, before = _final_states(str(tmp_path))
    search = _search(_config(tmp_path, num_trials=7), resume=True)
    search.run()
    journal, latest = _final_states(str(tmp_path))
    assert sorted(latest) == list(range(7))
    for trial_id, record in before.items():
        assert latest[trial_id] == record  # never re-run
    assert sum(r.finished for r in journal.records) == 7
    assert search.controller.num_updates == 7 // 3


def test_truncated_journal_line_is_recovered_and_reported(tmp_path):
    _search(_config(tmp_path, num_trials=3)).run()
    with open(tmp_path / "trials.jsonl", "a") as handle:
        handle.write('{"trial_id": 3, "status": "RUNN')
    logs = []
    _search(_config(tmp_path, num_trials=5), resume=True, logs=logs).run()
    assert any("dropped a truncated last line" in line for line in logs)
    _, latest = _final_states(str(tmp_path))
    assert sorted(latest) == list(range(5))
    assert all(r.finished for r in latest.values())


def test_interrupted_trials_are_rerun_with_the_same_actions(tmp_path):
    _search(_config(tmp_path, num_trials=3)).run()
    journal = Journal.open(str(tmp_path / "trials.jsonl"))
    # Simulate a kill: trial 3 was proposed and started, never finished.
    search = _search(_config(tmp_path, num_trials=4), resume=True)
    proposal = search.controller.propose()
    search.controller.save(str(tmp_path / "controller"))
    record = search._next_trial([], [proposal])
    journal.append(record)
    logs = []
    resumed = _search(_config(tmp_path, num_trials=4), resume=True, logs=logs)
    resumed.run()
    assert any("1 interrupted trials to re-run" in line for line in logs)
    journal, latest = _final_states(str(tmp_path))
    assert latest[3].status == "COMPLETED"
    assert latest[3].actions == proposal.actions
    assert latest[3].attempt == 2
