"""Reference model: exported once, from bytes or a path."""

from __future__ import annotations

import pytest

from mnas.latency.measure.reference import ReferenceModel, default_reference_name


def test_bytes_are_written_once_under_the_directory(tmp_path):
    calls = []

    def export() -> bytes:
        calls.append(1)
        return b"TFL3 reference"

    reference = ReferenceModel(default_reference_name(224), export, tmp_path)
    assert reference.name == "MobileNetV2 1.0 @224"
    path = reference.path()
    assert path == str(tmp_path / "MobileNetV2_1_0__224.tflite")
    assert reference.path() == path and calls == [1]
    assert (tmp_path / "MobileNetV2_1_0__224.tflite").read_bytes() == b"TFL3 reference"


def test_an_export_that_writes_its_own_file(tmp_path):
    made = tmp_path / "mv2.tflite"
    made.write_bytes(b"x")
    assert ReferenceModel.from_file("mv2", made).path() == str(made)
    with pytest.raises(ValueError, match="reference 'gone': export gave .*missing"):
        ReferenceModel.from_file("gone", tmp_path / "missing.tflite").path()
    with pytest.raises(ValueError, match="a reference model needs a name"):
        ReferenceModel("", lambda: b"")
