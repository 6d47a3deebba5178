import json
import os

import pytest

from mnas.controller import ControllerConfig
from mnas.search.reward import RewardConfig
from mnas.search.runner import Search, SearchConfig, SearchConfigError
from mnas.search.trial import Journal
from mnas.search.workers.pool import InlinePool
from mnas.testing.fakes import FakeLatencyBackend, fake_evaluate


def _config(work_dir, **overrides):
    values = dict(
        work_dir=str(work_dir),
        num_trials=8,
        controller_kind="reinforce",
        controller=ControllerConfig(batch_size=3),
        reward=RewardConfig("soft", target_ms=10.0),
        num_workers=2,
    )
    values.update(overrides)
    return SearchConfig(**values)


def _search(config, resume=False, fail_trials=(), logs=None):
    fail_trials = list(fail_trials)

    def evaluate(task):
        return fake_evaluate({**task, "fake": {"fail_trials": fail_trials}})

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
    assert message.endswith("\n  reward.target_ms: saved 10.0, now 20.0")


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
    assert any("cut a torn last line (line" in line for line in logs)
    _, latest = _final_states(str(tmp_path))
    assert sorted(latest) == list(range(5))
    assert all(r.finished for r in latest.values())


def test_interrupted_trials_are_rerun_with_the_same_actions(tmp_path):
    _search(_config(tmp_path, num_trials=3)).run()
    # Simulate a kill: trial 3 was proposed and started, never finished.
    with _search(_config(tmp_path, num_trials=4), resume=True) as search:
        search.oracle.resume()
        started = search.oracle.next_trial()
    assert started.trial_id == 3 and started.status == "RUNNING"
    logs = []
    resumed = _search(_config(tmp_path, num_trials=4), resume=True, logs=logs)
    resumed.run()
    assert any("1 interrupted trials to re-run" in line for line in logs)
    journal, latest = _final_states(str(tmp_path))
    assert latest[3].status == "COMPLETED"
    assert latest[3].actions == started.actions
    assert latest[3].attempt == 2
    assert [r.trial_id for r in journal.records if r.finished].count(3) == 1


# -- latency modes: measured / predicted / verified ------------------------------


class _CountingBackend(FakeLatencyBackend):
    def __init__(self):
        self.paths = []

    def measure(self, tflite_path):
        self.paths.append(tflite_path)
        return super().measure(tflite_path)


def _predicted_search(tmp_path, mode, backend, top_k=2, num_trials=6):
    from mnas.latency.lut.predictor import LatencyPredictor
    from mnas.testing.latency_models import synthetic_table

    config = _config(
        tmp_path,
        num_trials=num_trials,
        latency_mode=mode,
        lut_path="synthetic",
        top_k=top_k,
    )
    predictor = LatencyPredictor(synthetic_table())
    search = Search(
        config,
        InlinePool(fake_evaluate, config.num_workers),
        backend,
        log=lambda message: None,
        predictor=predictor,
    )
    return search, predictor


def test_predicted_mode_scores_with_the_table_and_times_nothing(tmp_path):
    from mnas.search_space import MNASNET_SPACE

    backend = _CountingBackend()
    search, predictor = _predicted_search(tmp_path, "predicted", backend)
    search.run()
    assert backend.paths == []
    _, latest = _final_states(str(tmp_path))
    for record in latest.values():
        expected = predictor.predict(MNASNET_SPACE.decode(record.actions))
        assert record.latency_ms == pytest.approx(expected)
        assert record.latency_source == "predicted"
        assert record.predicted_ms == record.latency_ms
        assert record.measured_ms is None
        assert record.latency["fingerprint"]["backend"] == "lut(synthetic)"


def test_verified_mode_measures_the_top_k_and_records_both_numbers(tmp_path):
    backend = _CountingBackend()
    search, _ = _predicted_search(tmp_path, "verified", backend, top_k=2)
    best = search.run()
    journal, latest = _final_states(str(tmp_path))
    # Everything ever in the top 2 was timed once, nothing else.
    timed = [os.path.basename(p) for p in backend.paths]
    assert len(timed) == len(set(timed)) >= 2
    for entry in best:
        record = latest[entry["trial_id"]]
        assert record.measured_ms == pytest.approx(
            FakeLatencyBackend().measure(record.tflite_path).median_ms
        )
        assert entry["predicted_ms"] == record.predicted_ms == record.latency_ms
        assert entry["measured_ms"] == record.measured_ms
    # The reward stays the predicted one; a verification appends a record.
    verified = [r for r in journal.records if r.measured_ms is not None]
    assert all(r.status == "COMPLETED" for r in verified)
    assert len(verified) == len(timed)
    untimed = [r for r in latest.values() if r.measured_ms is None]
    assert all(r.tflite_path not in backend.paths for r in untimed)


def test_predicted_modes_need_a_table():
    with pytest.raises(SearchConfigError, match="needs a lookup table"):
        _config("/tmp/unused", latency_mode="predicted")
    with pytest.raises(SearchConfigError, match="latency mode must be one of"):
        _config("/tmp/unused", latency_mode="guessed")


def test_search_refuses_predicted_mode_without_a_predictor(tmp_path):
    config = _config(tmp_path, latency_mode="verified", lut_path="x.jsonl")
    with pytest.raises(SearchConfigError, match="needs a latency predictor"):
        Search(config, InlinePool(fake_evaluate, 1), FakeLatencyBackend())


# -- stopping after consecutive failures ---------------------------------------------


class _DeadBackend:
    def measure(self, tflite_path):
        raise RuntimeError("adb: no devices/emulators found")


def test_a_dead_backend_stops_the_search_after_five_failed_trials(tmp_path):
    from mnas.search.runner import ConsecutiveFailuresError

    config = _config(tmp_path, num_trials=12, num_workers=1)
    search = Search(
        config, InlinePool(fake_evaluate, 1), _DeadBackend(), log=lambda m: None
    )
    with pytest.raises(ConsecutiveFailuresError) as info:
        search.run()
    assert str(info.value) == (
        "stopped after 5 consecutive failed trials (0, 1, 2, 3, 4); their common "
        "error: latency measurement failed: adb: no devices/emulators found"
    )
    journal, latest = _final_states(str(tmp_path))
    assert sorted(latest) == list(range(5))
    assert all(r.status == "FAILED" for r in latest.values())
    saved = json.loads((tmp_path / "best.json").read_text())
    assert saved["num_completed"] == 0 and saved["best"] == []
    # Fixed, the search resumes where it stopped.
    _search(_config(tmp_path, num_trials=7, num_workers=1), resume=True).run()
    _, latest = _final_states(str(tmp_path))
    assert [latest[i].status for i in range(7)] == ["FAILED"] * 5 + ["COMPLETED"] * 2


def test_a_completed_trial_resets_the_failure_count(tmp_path):
    from mnas.search.runner import ConsecutiveFailuresError

    fails = [0, 1, 2, 3, 5, 6, 7, 8, 9]
    search = _search(_config(tmp_path, num_trials=20, num_workers=1), fail_trials=fails)
    with pytest.raises(ConsecutiveFailuresError) as info:
        search.run()
    assert info.value.trial_ids == (5, 6, 7, 8, 9)
    assert info.value.common_error == (
        "FloatingPointError: loss became NaN in epoch 1 (fake trial N)"
    )
    _, latest = _final_states(str(tmp_path))
    assert sorted(latest) == list(range(10)) and latest[4].status == "COMPLETED"


def test_no_limit_spends_the_whole_budget(tmp_path):
    config = _config(
        tmp_path, num_trials=6, num_workers=1, max_consecutive_failures=None
    )
    best = _search(config, fail_trials=range(6)).run()
    _, latest = _final_states(str(tmp_path))
    assert best == [] and [r.status for r in latest.values()] == ["FAILED"] * 6


def test_common_error_names_the_majority_when_errors_differ():
    from mnas.search.runner import common_error

    assert common_error(["a\ntrace", "a", "b"]) == "a (in 2 of 3; the others differ)"
    assert common_error(["worker died on trial 3", "worker died on trial 4"]) == (
        "worker died on trial N"
    )
