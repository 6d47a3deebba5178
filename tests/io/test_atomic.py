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


def test_bytes_replace_the_file_so_a_reader_of_the_old_one_never_sees_a_mix(
    tmp_path,
):
    path = tmp_path / "models" / "model.tflite"
    write_bytes_atomic(str(path), b"old model")
    with open(path, "rb") as reader:  # e.g. a latency backend reading it
        write_bytes_atomic(path, b"\x00\x01")
        assert reader.read() == b"old model"  # renamed over, not rewritten
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.tflite"]


def test_a_figure_is_a_png_and_a_failed_save_keeps_the_old_one(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mnas.io.atomic import save_figure_atomic

    path = tmp_path / "plot.png"
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    save_figure_atomic(path, figure, dpi=20)
    first = path.read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        save_figure_atomic(path, figure, dpi=-1)
    plt.close(figure)
    assert path.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]
