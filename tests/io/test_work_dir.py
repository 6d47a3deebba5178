import json
import os

import pytest

from mnas.io.lock import LockedError
from mnas.io.work_dir import (
    check_claim,
    claim_work_dir,
    config_differences,
    remove_checkpoint_temps,
)


def test_differences_skip_resumable_fields():
    assert config_differences(
        {"a": 1, "b": 2, "n": 3}, {"a": 1, "b": 5, "n": 4, "c": 0}, {"n"}
    ) == ["b: saved 2, now 5", "c: saved None, now 0"]


def test_differences_of_sections_name_the_field_and_honour_dotted_paths():
    saved = {"arch": {"r": 1}, "training": {"epochs": 3, "lr": 0.1}, "x": {"a": 1}}
    current = {"arch": {"r": 2}, "training": {"epochs": 9, "lr": 0.2}, "x": 5}
    assert config_differences(saved, current, {"training.epochs"}) == [
        "arch.r: saved 1, now 2",
        "training.lr: saved 0.1, now 0.2",
        "x: saved {'a': 1}, now 5",
    ]


def test_claim_writes_then_refuses_without_resume(tmp_path):
    claim_work_dir(str(tmp_path), {"a": 1}, False, (), ValueError).release()
    assert json.loads((tmp_path / "config.json").read_text()) == {"a": 1}
    with pytest.raises(ValueError, match="already holds a search; pass --resume"):
        claim_work_dir(str(tmp_path), {"a": 1}, False, (), ValueError)
    claim_work_dir(str(tmp_path), {"a": 1}, True, (), ValueError).release()
    with pytest.raises(ValueError, match="different config:\n  a: saved 1, now 2"):
        claim_work_dir(str(tmp_path), {"a": 2}, True, (), ValueError)


def test_check_claim_refuses_what_the_claim_would_and_writes_nothing(tmp_path):
    fresh = tmp_path / "fresh"
    check_claim(str(fresh), {"a": 1}, False)
    assert not fresh.exists()  # nothing created, nothing locked
    claim_work_dir(str(tmp_path), {"a": 1}, False, (), ValueError).release()
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match="already holds a search; pass --resume"):
        check_claim(str(tmp_path), {"a": 1}, False, (), ValueError)
    with pytest.raises(ValueError, match="different config:\n  a: saved 1, now 2"):
        check_claim(str(tmp_path), {"a": 2}, True, (), ValueError)
    check_claim(str(tmp_path), {"a": 1, "n": 5}, True, {"n"}, ValueError)
    assert json.loads((tmp_path / "config.json").read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == before


def test_a_claimed_dir_is_locked_until_released(tmp_path):
    claimed = claim_work_dir(str(tmp_path), {"a": 1}, False)
    with pytest.raises(LockedError) as info:
        claim_work_dir(str(tmp_path), {"a": 1}, True)
    assert str(info.value).startswith(
        f"work directory {tmp_path} is in use by another process (pid {os.getpid()})"
    )
    claimed.release()
    with claim_work_dir(str(tmp_path), {"a": 1}, True) as again:
        assert again.resumed and again.file("x") == os.path.join(tmp_path, "x")


def test_a_refused_claim_releases_the_lock(tmp_path):
    claim_work_dir(str(tmp_path), {"a": 1}, False).release()
    with pytest.raises(ValueError):
        claim_work_dir(str(tmp_path), {"a": 2}, True)
    claim_work_dir(str(tmp_path), {"a": 1}, True).release()


def test_upgrade_lets_an_old_spelling_resume(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"old_name": 3}))

    def upgrade(saved):
        return {"new_name": saved["old_name"]}

    claim_work_dir(str(tmp_path), {"new_name": 3}, True, upgrade=upgrade).release()
    assert json.loads((tmp_path / "config.json").read_text()) == {"new_name": 3}


def test_a_config_that_is_not_json_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError) as info:
        claim_work_dir(str(tmp_path), {}, True, error=ValueError)
    assert str(info.value) == (
        f"cannot read {tmp_path / 'config.json'}: Expecting property name enclosed "
        "in double quotes: line 1 column 2 (char 1)"
    )


def test_a_state_file_without_config_refuses_resume(tmp_path):
    (tmp_path / "trials.jsonl").write_text("")
    with pytest.raises(ValueError, match="config.json is missing"):
        claim_work_dir(str(tmp_path), {}, True, (), ValueError, "trials.jsonl")
    assert not (tmp_path / "config.json").exists()


def test_remove_checkpoint_temps_removes_only_interrupted_saves(tmp_path):
    (tmp_path / "ckpt-3_temp").mkdir()
    (tmp_path / "ckpt-3_temp" / "part-00000-of-00001").write_text("x")
    (tmp_path / "ckpt-2.index").write_text("x")
    (tmp_path / "keep_temp.txt").write_text("x")
    assert remove_checkpoint_temps(str(tmp_path)) == [str(tmp_path / "ckpt-3_temp")]
    assert sorted(os.listdir(tmp_path)) == ["ckpt-2.index", "keep_temp.txt"]
