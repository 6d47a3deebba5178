import json

import pytest

from mnas.io.atomic import write_bytes_atomic, write_json_atomic


def test_json_is_written_whole_and_replaces_the_old_file(tmp_path):
    path = tmp_path / "sub" / "config.json"
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    write_json_atomic(path, {"a": 3})
    assert json.loads(path.read_text()) == {"a": 3}
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "best.json"
    write_json_atomic(path, {"ok": True})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": True}
    assert not (tmp_path / "best.json.partial").exists()


def test_bytes(tmp_path):
    path = tmp_path / "model.tflite"
    write_bytes_atomic(str(path), b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
