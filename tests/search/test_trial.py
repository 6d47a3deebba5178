import json

import pytest

from mnas.search.trial import Journal, JournalError, TrialRecord


def _record(trial_id, status="RUNNING", **kw):
    return TrialRecord(
        trial_id=trial_id, status=status, proposal_id=trial_id, actions=(1, 2), **kw
    )


def test_append_and_reopen(tmp_path):
    path = str(tmp_path / "trials.jsonl")
    journal = Journal.open(path)
    journal.append(_record(0))
    journal.append(_record(1))
    journal.append(_record(0).replace(status="COMPLETED", accuracy=0.5, reward=0.4))
    reopened = Journal.open(path)
    assert reopened.recovery_notes == []
    latest = reopened.latest()
    assert list(latest) == [0, 1]
    assert latest[0].status == "COMPLETED" and latest[0].accuracy == 0.5
    assert latest[1].status == "RUNNING"
    assert reopened.next_trial_id() == 2
    with open(path) as handle:
        assert len(handle.read().splitlines()) == 3


def test_truncated_last_line_is_dropped_and_reported(tmp_path):
    path = tmp_path / "trials.jsonl"
    journal = Journal.open(str(path))
    journal.append(_record(0))
    journal.append(_record(1))
    good = path.read_bytes()
    path.write_bytes(good + _record(2).to_json().encode()[:25])
    reopened = Journal.open(str(path))
    assert [r.trial_id for r in reopened.records] == [0, 1]
    assert reopened.recovery_notes == [
        f"{path}: cut a torn last line (line 3, 25 bytes) left by an interrupted write"
    ]
    assert path.read_bytes() == good  # the file is repaired for further appends
    reopened.append(_record(2))
    assert [r.trial_id for r in Journal.open(str(path)).records] == [0, 1, 2]


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "trials.jsonl"
    path.write_text(_record(0).to_json())
    journal = Journal.open(str(path))
    assert [r.trial_id for r in journal.records] == [0]
    assert journal.recovery_notes == [
        f"{path}: the last line (line 1) was complete but had no newline; added it"
    ]
    journal.append(_record(1))
    assert [r.trial_id for r in Journal.open(str(path)).records] == [0, 1]


def test_corrupt_middle_line_refuses_naming_the_line(tmp_path):
    path = tmp_path / "trials.jsonl"
    path.write_text(_record(0).to_json() + "\n{garbage\n" + _record(1).to_json() + "\n")
    with pytest.raises(JournalError) as info:
        Journal.open(str(path))
    assert str(info.value) == (
        f"{path}: line 2 is corrupt (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)); only a torn last line is cut "
        "automatically: repair or remove this line by hand"
    )


def test_a_line_that_is_no_trial_record_refuses_naming_the_line(tmp_path):
    path = tmp_path / "trials.jsonl"
    path.write_text(
        '{"trial_id": 0, "status": "DONE", "proposal_id": 0, "actions": []}\n'
    )
    with pytest.raises(JournalError) as info:
        Journal.open(str(path))
    assert str(info.value) == (
        f"{path}: line 1 is not a valid trial record (trial status must be one of "
        "('RUNNING', 'COMPLETED', 'FAILED'), got 'DONE')"
    )
    assert isinstance(info.value, ValueError)  # binaries report it in one line


def test_records_are_json_without_nan(tmp_path):
    with pytest.raises(ValueError):
        _record(0, accuracy=float("nan")).to_json()
    data = json.loads(_record(3, error="boom").to_json())
    assert data["status"] == "RUNNING" and data["error"] == "boom"


def test_bad_status():
    with pytest.raises(ValueError, match="trial status must be one of"):
        _record(0, status="DONE")
