"""The oracle's write order and its recovery by replaying the journal."""

import os

import pytest

from mnas.controller import ControllerConfig, make_controller
from mnas.search.oracle import Oracle
from mnas.search.trial import Journal, JournalError
from mnas.search_space import get_search_space

SPACE = get_search_space("mnasnet")


def _oracle(tmp_path, events=None, batch_size=2):
    controller = make_controller(
        "random", SPACE.decisions(), ControllerConfig(batch_size=batch_size)
    )
    journal = Journal.open(str(tmp_path / "trials.jsonl"))
    oracle = Oracle.restore(controller, journal, SPACE, str(tmp_path / "controller"))
    if events is not None:
        _record_calls(oracle, events)
    return oracle


def _record_calls(oracle, events):
    """Logs, in order, the calls that write state."""
    controller, journal = oracle.controller, oracle.journal

    def spy(owner, name, label):
        original = getattr(owner, name)

        def call(*args, **kwargs):
            if name == "append":
                events.append(f"append {args[0].status}")
            else:
                events.append(label)
            return original(*args, **kwargs)

        setattr(owner, name, call)

    spy(controller, "propose", "propose")
    spy(controller, "feedback", "feedback")
    spy(controller, "feedback_failed", "feedback_failed")
    spy(controller, "save", "save")
    spy(journal, "append", "append")


def test_a_proposal_is_recorded_without_a_checkpoint(tmp_path):
    events = []
    oracle = _oracle(tmp_path, events)
    oracle.resume()
    record = oracle.next_trial()
    assert events == ["propose", "append RUNNING"]
    assert (record.trial_id, record.status, record.proposal_id) == (0, "RUNNING", 0)
    assert record.block_strings == SPACE.decode(record.actions).block_strings


def test_a_result_is_recorded_then_fed_back_checkpointed_only_by_an_update(
    tmp_path,
):
    events = []
    oracle = _oracle(tmp_path, events)
    oracle.resume()
    first, second, third = (oracle.next_trial() for _ in range(3))
    events.clear()
    oracle.finish(first.replace(status="COMPLETED", reward=0.5, accuracy=0.5))
    oracle.finish(second.replace(status="FAILED", error="boom"))
    oracle.finish(third.replace(status="COMPLETED", reward=0.4, accuracy=0.4))
    assert events == [
        "append COMPLETED",
        "feedback",
        "append FAILED",
        "feedback_failed",
        "append COMPLETED",
        "feedback",
        "save",  # the second reward completed a batch of 2: an update
    ]
    with pytest.raises(ValueError, match="trial 0 is not finished: RUNNING"):
        oracle.finish(first)


def test_resume_replays_a_reward_the_checkpoint_missed(tmp_path):
    oracle = _oracle(tmp_path)
    oracle.resume()
    record = oracle.next_trial()
    # Killed after the COMPLETED record, before the feedback.
    oracle.journal.append(record.replace(status="COMPLETED", reward=0.7))
    resumed = _oracle(tmp_path)
    assert resumed.controller.num_pending == 0  # no checkpoint holds it
    plan = resumed.resume()
    assert (plan.finished, plan.replayed, plan.reruns, plan.orphans) == (1, 1, [], [])
    assert resumed.controller.state_summary()["num_rewards"] == 1
    assert resumed.controller.num_pending == 0
    # The replay was checkpointed: a second resume replays nothing.
    assert _oracle(tmp_path).resume().replayed == 0


def test_resume_turns_an_unrecorded_proposal_into_the_next_trial(tmp_path):
    oracle = _oracle(tmp_path)
    oracle.resume()
    proposal = oracle.controller.propose()
    oracle.save()  # a checkpoint holding it (an update), then killed
    resumed = _oracle(tmp_path)
    plan = resumed.resume()
    assert plan.describe() == (
        "resuming: 0 trials finished, 0 interrupted trials to re-run, "
        "0 rewards replayed, 1 unrecorded proposals"
    )
    record = resumed.next_trial()
    assert (record.trial_id, record.proposal_id) == (0, proposal.proposal_id)
    assert record.actions == proposal.actions
    assert resumed.next_trial().proposal_id == 1  # then new proposals


def test_resume_reruns_a_running_trial_with_its_id_and_actions(tmp_path):
    oracle = _oracle(tmp_path)
    oracle.resume()
    running = oracle.next_trial()
    resumed = _oracle(tmp_path)
    assert len(resumed.resume().reruns) == 1
    again = resumed.next_trial()
    assert (again.trial_id, again.proposal_id, again.actions, again.attempt) == (
        running.trial_id,
        running.proposal_id,
        running.actions,
        2,
    )
    assert resumed.controller.num_pending == 1  # no new proposal was made


def test_a_journal_with_actions_outside_the_space_is_refused_naming_the_trial(
    tmp_path,
):
    oracle = _oracle(tmp_path)
    oracle.resume()
    record = oracle.next_trial()
    oracle.journal.append(record.replace(trial_id=1, actions=(9,) * 42))
    with pytest.raises(JournalError) as info:
        _oracle(tmp_path).check_journal()
    message = str(info.value)
    assert message.startswith(
        f"{tmp_path / 'trials.jsonl'}: trial 1 holds actions search space "
        f"{SPACE.identity()} cannot decode ("
    )


def test_restore_removes_the_leftovers_of_an_interrupted_save(tmp_path):
    oracle = _oracle(tmp_path)
    oracle.save()
    os.makedirs(tmp_path / "controller" / "ckpt-2_temp")
    _oracle(tmp_path)
    assert not (tmp_path / "controller" / "ckpt-2_temp").exists()


@pytest.mark.parametrize("kind", ["random", "reinforce"])
def test_resume_samples_the_proposals_since_the_last_update_again(tmp_path, kind):
    def make():
        controller = make_controller(
            kind, SPACE.decisions(), ControllerConfig(batch_size=2, seed=3)
        )
        journal = Journal.open(str(tmp_path / "trials.jsonl"))
        return Oracle.restore(controller, journal, SPACE, str(tmp_path / "ctl"))

    oracle = make()
    oracle.resume()
    records = [oracle.next_trial() for _ in range(3)]
    for record in records[:2]:  # an update, checkpointed
        oracle.finish(record.replace(status="COMPLETED", reward=0.5, accuracy=0.5))
    after = [oracle.next_trial() for _ in range(2)]  # proposed after it
    oracle.finish(after[0].replace(status="COMPLETED", reward=0.3, accuracy=0.3))
    # Killed: the checkpoint predates after[0] and after[1].
    resumed = make()
    plan = resumed.resume()
    assert plan.replayed == 1
    assert [r.trial_id for r in plan.reruns] == [2, 4]
    pending = resumed.controller.pending_proposals()
    assert [(p.proposal_id, p.actions) for p in pending] == [
        (r.proposal_id, r.actions) for r in (records[2], after[1])
    ]
    assert resumed.next_trial().trial_id == 2
    assert resumed.next_trial().trial_id == 4
    new = resumed.next_trial()
    assert (new.trial_id, new.proposal_id) == (5, 5)


def test_resume_refuses_a_journal_the_controller_does_not_sample_again(tmp_path):
    oracle = _oracle(tmp_path)
    oracle.resume()
    record = oracle.next_trial()
    changed = tuple((a + 1) % 2 for a in record.actions)
    oracle.journal.append(record.replace(actions=changed))
    with pytest.raises(JournalError) as info:
        _oracle(tmp_path).resume()
    assert str(info.value) == (
        f"{tmp_path / 'trials.jsonl'}: trial 0 holds proposal 0 with other "
        "actions than the controller samples again from its checkpoint (was "
        "the controller's seed or config changed?)"
    )


@pytest.mark.parametrize("kind", ["random", "reinforce"])
def test_resume_replays_every_update_since_an_older_checkpoint(tmp_path, kind):
    """Checkpointed every 3rd update, killed 2 updates later, with trials
    finishing out of order and one failing: the resumed controller equals the
    one that was killed."""

    def make():
        controller = make_controller(
            kind, SPACE.decisions(), ControllerConfig(batch_size=2, seed=5)
        )
        journal = Journal.open(str(tmp_path / "trials.jsonl"))
        return Oracle.restore(
            controller, journal, SPACE, str(tmp_path / "ctl"), checkpoint_every=3
        )

    oracle = make()
    oracle.resume()
    in_flight = [oracle.next_trial(), oracle.next_trial()]
    for step in range(11):
        record = in_flight.pop(1 if step % 3 else 0)
        if step == 4:
            oracle.finish(record.replace(status="FAILED", error="boom"))
        else:
            reward = 0.05 * step
            oracle.finish(
                record.replace(status="COMPLETED", reward=reward, accuracy=reward)
            )
        in_flight.append(oracle.next_trial())
    killed = oracle.controller
    assert killed.num_updates == 5
    assert make().controller.num_updates == 3  # the checkpoint on disk

    resumed = make()
    plan = resumed.resume()
    assert plan.replayed == 4
    assert [r.trial_id for r in plan.reruns] == [r.trial_id for r in in_flight]
    assert resumed.controller.state_summary() == killed.state_summary()
    assert [
        (p.proposal_id, p.actions) for p in resumed.controller.pending_proposals()
    ] == [(p.proposal_id, p.actions) for p in killed.pending_proposals()]
    # The same policy: the same next proposals and the same probabilities.
    ahead, again = killed.propose_batch(3), resumed.controller.propose_batch(3)
    assert [p.actions for p in again] == [p.actions for p in ahead]
    assert [p.log_prob for p in again] == pytest.approx([p.log_prob for p in ahead])
    # The replay was checkpointed.
    assert make().controller.num_updates == 5


def test_save_if_behind_saves_only_after_an_unsaved_update(tmp_path):
    events = []
    oracle = _oracle(tmp_path, events, batch_size=1)
    oracle.checkpoint_every = 2
    oracle.resume()
    oracle.save_if_behind()
    assert "save" not in events
    record = oracle.next_trial()
    oracle.finish(record.replace(status="COMPLETED", reward=0.5, accuracy=0.5))
    assert "save" not in events  # update 1 of 2
    oracle.save_if_behind()
    assert events.count("save") == 1
    oracle.save_if_behind()
    assert events.count("save") == 1
