import json

import pytest

from mnas.io.work_dir import claim_work_dir, config_differences


def test_differences_skip_resumable_fields():
    assert config_differences(
        {"a": 1, "b": 2, "n": 3}, {"a": 1, "b": 5, "n": 4, "c": 0}, {"n"}
    ) == ["b: saved 2, now 5", "c: saved None, now 0"]


def test_claim_writes_then_refuses_without_resume(tmp_path):
    claim_work_dir(str(tmp_path), {"a": 1}, False, (), ValueError)
    assert json.loads((tmp_path / "config.json").read_text()) == {"a": 1}
    with pytest.raises(ValueError, match="already holds a search; pass --resume"):
        claim_work_dir(str(tmp_path), {"a": 1}, False, (), ValueError)
    claim_work_dir(str(tmp_path), {"a": 1}, True, (), ValueError)
    with pytest.raises(ValueError, match="different config:\n  a: saved 1, now 2"):
        claim_work_dir(str(tmp_path), {"a": 2}, True, (), ValueError)


def test_a_state_file_without_config_refuses_resume(tmp_path):
    (tmp_path / "trials.jsonl").write_text("")
    with pytest.raises(ValueError, match="config.json is missing"):
        claim_work_dir(str(tmp_path), {}, True, (), ValueError, "trials.jsonl")
    assert not (tmp_path / "config.json").exists()
