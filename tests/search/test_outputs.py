"""Ranking, best.json, pareto.png and the kept models, shared by the loops."""

import json
import os

from mnas.search.outputs import (
    Outputs,
    rank,
    rank_trials,
    trial_entry,
    trial_model_name,
)
from mnas.search.trial import TrialRecord
from mnas.search_space import get_search_space

SPACE = get_search_space("mnasnet")
ACTIONS = tuple(SPACE.sample(__import__("numpy").random.default_rng(0)))


def _record(trial_id, status="COMPLETED", reward=None):
    return TrialRecord(
        trial_id=trial_id,
        status=status,
        proposal_id=trial_id,
        actions=ACTIONS,
        reward=reward,
        accuracy=reward,
        latency_ms=5.0 if reward is not None else None,
    )


def test_rank_puts_the_best_score_first_ties_by_id_and_failures_last():
    items = [("a", 0.5, 3), ("b", None, 0), ("c", 0.9, 2), ("d", 0.5, 1)]
    ranked = rank(items, lambda x: x[1], lambda x: x[2])
    assert [x[0] for x in ranked] == ["c", "d", "a", "b"]


def test_rank_trials_keeps_only_completed_trials():
    records = [
        _record(0, reward=0.3),
        _record(1, "FAILED"),
        _record(2, "RUNNING"),
        _record(3, reward=0.3),
        _record(4, reward=0.8),
    ]
    assert [r.trial_id for r in rank_trials(records)] == [4, 0, 3]


def test_best_json_holds_the_header_the_count_and_the_entries(tmp_path):
    from mnas.flags.arch import load_arch

    outputs = Outputs(str(tmp_path))
    record = _record(7, reward=0.6)
    spec = SPACE.decode(ACTIONS)
    entry = trial_entry(1, record, spec, outputs.model_path(trial_model_name(7)))
    data = outputs.write_best({"search_space": SPACE.identity()}, 5, [entry])
    saved = json.loads((tmp_path / "best.json").read_text())
    assert saved == data
    assert sorted(saved) == ["best", "num_completed", "search_space"]
    assert saved["num_completed"] == 5
    assert sorted(saved["best"][0]) == [
        "accuracy",
        "actions",
        "arch",
        "block_strings",
        "latency_ms",
        "latency_source",
        "measured_ms",
        "predicted_ms",
        "rank",
        "reward",
        "tflite",
        "trial_id",
    ]
    assert saved["best"][0]["tflite"] == str(tmp_path / "models" / "trial-00007.tflite")
    assert load_arch(str(tmp_path / "best.json")) == spec  # --arch=best.json


def test_prune_keeps_the_best_models_and_never_touches_running_trials(tmp_path):
    outputs = Outputs(str(tmp_path))
    os.makedirs(tmp_path / "models")
    for trial_id in range(4):
        (tmp_path / "models" / trial_model_name(trial_id)).write_text("x")
    removed = outputs.prune_models(
        [trial_model_name(i) for i in (0, 1, 2)],  # trial 3 is still running
        {trial_model_name(1)},
    )
    assert sorted(os.path.basename(p) for p in removed) == [
        "trial-00000.tflite",
        "trial-00002.tflite",
    ]
    assert sorted(os.listdir(tmp_path / "models")) == [
        "trial-00001.tflite",
        "trial-00003.tflite",
    ]


def test_model_paths_follow_the_work_directory_not_the_journal(tmp_path):
    outputs = Outputs(str(tmp_path / "moved"))
    assert outputs.model_path("/old/place/models/trial-00002.tflite") == str(
        tmp_path / "moved" / "models" / "trial-00002.tflite"
    )


def test_pareto_png_is_written(tmp_path):
    Outputs(str(tmp_path)).plot_pareto([(5.0, 0.5), (4.0, 0.6)], 6.0, "t")
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_outputs_are_due_at_the_first_trial_then_once_per_interval():
    from mnas.search.runner import OutputsThrottle

    now = [100.0]
    throttle = OutputsThrottle(15.0, clock=lambda: now[0])
    due = []
    for step in (0.0, 5.0, 14.0, 15.5, 20.0, 31.0):
        now[0] = 100.0 + step
        due.append(throttle.due())
        if due[-1]:
            throttle.wrote()
    assert due == [True, False, False, True, False, True]
    assert OutputsThrottle(0.0, clock=lambda: now[0]).due()
