"""A search work directory written by the code before the restructure resumes.

``fixtures/premove_search`` was written by commit 431c88e's ``mnas.search``
(``fixtures/make_premove_search.py``): trials 0-3 finished (trial 1 failed),
trial 4 RUNNING when the process was interrupted, ``config.json`` in the old
untyped form, absolute model paths of the directory it was written in.
"""

import json
import os
import shutil
from collections import Counter

import pytest

from mnas.controller import ControllerConfig
from mnas.latency.config import LatencyConfig
from mnas.search.reward import RewardConfig
from mnas.search.runner import Search, SearchConfig, SearchConfigError
from mnas.search.trial import Journal
from mnas.search.workers.pool import InlinePool
from mnas.testing.fakes import FakeLatencyBackend, fake_evaluate
from mnas.train.data_config import DataConfig
from mnas.train.proxy_config import TrainerConfig

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "premove_search")


def _config(work_dir, **changes):
    """What today's mnas-search makes of the flags that wrote the fixture."""
    values = dict(
        work_dir=str(work_dir),
        num_trials=6,
        num_workers=1,
        controller_kind="reinforce",
        controller=ControllerConfig(batch_size=2, hidden_size=16),
        reward=RewardConfig("soft", target_ms=10.0),
        data=DataConfig(dataset="digits", resolution=32, seed=0),
        trainer=TrainerConfig(epochs=4, seed=0),
        latency=LatencyConfig(),
        top_k=2,
    )
    values.update(changes)
    return SearchConfig(**values)


@pytest.fixture
def old_work_dir(tmp_path):
    work_dir = tmp_path / "moved" / "premove_search"
    shutil.copytree(FIXTURE, work_dir)
    return work_dir


def test_the_fixture_is_what_the_old_code_wrote(old_work_dir):
    saved = json.loads((old_work_dir / "config.json").read_text())
    assert "latency_options" in saved and "latency" not in saved
    latest = Journal.open(str(old_work_dir / "trials.jsonl")).latest()
    assert [latest[i].status for i in range(5)] == [
        "COMPLETED",
        "FAILED",
        "COMPLETED",
        "COMPLETED",
        "RUNNING",
    ]


def test_a_pre_restructure_work_dir_resumes_without_losing_or_duplicating(
    old_work_dir,
):
    before = Journal.open(str(old_work_dir / "trials.jsonl")).latest()
    logs = []
    search = Search(
        _config(old_work_dir),
        InlinePool(fake_evaluate, 1),
        FakeLatencyBackend(),
        resume=True,
        log=logs.append,
    )
    best = search.run()

    assert logs[0] == (
        "resuming: 4 trials finished, 1 interrupted trials to re-run, "
        "0 rewards replayed, 0 unrecorded proposals"
    )
    journal = Journal.open(str(old_work_dir / "trials.jsonl"))
    latest = journal.latest()
    assert sorted(latest) == list(range(6))
    assert all(r.finished for r in latest.values())
    finished = Counter(r.trial_id for r in journal.records if r.finished)
    assert finished == Counter({trial_id: 1 for trial_id in range(6)})
    for trial_id in range(4):
        assert latest[trial_id] == before[trial_id]  # never re-run
    assert latest[4].actions == before[4].actions and latest[4].attempt == 2
    assert max(Counter(r.proposal_id for r in latest.values()).values()) == 1
    # The restored controller saw every reward once: 5 completed, 1 failed.
    summary = search.controller.state_summary()
    assert summary["num_rewards"] == 5 and summary["num_failed"] == 1
    assert search.controller.num_updates == 5 // 2
    assert search.controller.num_pending == 0
    # Models are found under the moved directory, whatever the journal says.
    assert [entry["tflite"] for entry in best] == [
        str(old_work_dir / "models" / f"trial-{entry['trial_id']:05d}.tflite")
        for entry in best
    ]
    assert sorted(os.listdir(old_work_dir / "models")) == sorted(
        os.path.basename(entry["tflite"]) for entry in best
    )
    saved = json.loads((old_work_dir / "config.json").read_text())
    assert saved == json.loads(json.dumps(_config(old_work_dir).to_dict()))


def test_a_pre_restructure_work_dir_refuses_another_config_naming_the_field(
    old_work_dir,
):
    with pytest.raises(SearchConfigError) as info:
        Search(
            _config(old_work_dir, trainer=TrainerConfig(epochs=5, seed=0)),
            InlinePool(fake_evaluate, 1),
            FakeLatencyBackend(),
            resume=True,
        )
    message = str(info.value)
    assert message == (
        f"cannot resume: {old_work_dir} belongs to a different config:\n"
        "  trainer.epochs: saved 4, now 5"
    )
