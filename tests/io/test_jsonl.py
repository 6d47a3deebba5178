"""The one JSON-lines rule: a torn last line is cut and noted, a corrupt line
before it is refused naming file and line."""

import json
import math

import pytest

from mnas.io.jsonl import JsonlError, JsonlLog


def _log(path, **kwargs):
    return JsonlLog.open(str(path), **kwargs)


def test_appends_are_key_sorted_lines_and_reopen_in_order(tmp_path):
    path = tmp_path / "log.jsonl"
    log = _log(path)
    log.append({"b": 1, "a": [1, 2]})
    log.append({"a": None})
    assert path.read_text() == '{"a": [1, 2], "b": 1}\n{"a": null}\n'
    again = _log(path)
    assert again.records == [{"a": [1, 2], "b": 1}, {"a": None}]
    assert again.recovery_notes == []


def test_a_missing_file_holds_no_records_and_is_created_by_the_first_append(
    tmp_path,
):
    path = tmp_path / "new.jsonl"
    log = _log(path)
    assert log.records == [] and not path.exists()
    log.append({"x": 1})
    assert path.read_text() == '{"x": 1}\n'


def test_a_torn_last_line_is_cut_and_reported(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"n": 1}\n{"n": 2}\n{"n": 3, "hal')
    log = _log(path)
    assert log.records == [{"n": 1}, {"n": 2}]
    assert log.recovery_notes == [
        f"{path}: cut a torn last line (line 3, 13 bytes) left by an interrupted write"
    ]
    assert path.read_text() == '{"n": 1}\n{"n": 2}\n'
    log.append({"n": 3})
    assert [r["n"] for r in _log(path).records] == [1, 2, 3]


def test_a_torn_line_of_bad_utf8_is_cut_too(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"n": 1}\n{"s": "\xe2\x82')
    log = _log(path)
    assert log.records == [{"n": 1}]
    assert path.read_bytes() == b'{"n": 1}\n'


def test_a_complete_last_line_without_its_newline_is_kept_and_terminated(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"n": 1}\n{"n": 2}')
    log = _log(path)
    assert log.records == [{"n": 1}, {"n": 2}]
    assert log.recovery_notes == [
        f"{path}: the last line (line 2) was complete but had no newline; added it"
    ]
    assert path.read_text() == '{"n": 1}\n{"n": 2}\n'


def test_a_corrupt_middle_line_is_refused_naming_file_and_line(tmp_path):
    path = tmp_path / "log.jsonl"
    content = '{"n": 1}\n\n{"n": 2, oops}\n{"n": 3}\n'
    path.write_text(content)
    with pytest.raises(JsonlError) as info:
        _log(path)
    assert str(info.value) == (
        f"{path}: line 3 is corrupt (Expecting property name enclosed in double "
        "quotes: line 1 column 10 (char 9)); only a torn last line is cut "
        "automatically: repair or remove this line by hand"
    )
    assert path.read_text() == content  # nothing is cut


def test_a_line_that_is_not_a_record_is_refused_naming_it(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"n": 1}\n{"m": 2}\n')

    def parse(data):
        return int(data["n"])

    with pytest.raises(JsonlError) as info:
        _log(path, parse=parse, what="counter")
    assert str(info.value) == f"{path}: line 2 is not a valid counter (missing 'n')"


def test_a_reader_that_does_not_repair_leaves_the_file_until_it_appends(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"n": 1}\n{"n": 2, "to')
    log = _log(path, repair_now=False)
    assert log.records == [{"n": 1}]
    assert path.read_text() == '{"n": 1}\n{"n": 2, "to'
    log.append({"n": 2})
    assert path.read_text() == '{"n": 1}\n{"n": 2}\n'


def test_a_late_repair_refuses_a_file_that_grew_since_it_was_read(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"n": 1}\n{"n": 2, "to')
    log = _log(path, repair_now=False)
    with open(path, "a") as handle:  # another writer finished its line
        handle.write('rn": 1}\n')
    with pytest.raises(JsonlError) as info:
        log.append({"n": 3})
    assert str(info.value) == (
        f"{path} changed since it was read (21 -> 29 bytes); read it again before "
        "appending"
    )
    assert [r["n"] for r in _log(path).records] == [1, 2]


def test_nan_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "log.jsonl"
    log = _log(path)
    with pytest.raises(ValueError):
        log.append({"x": math.nan})
    assert not path.exists() and log.records == []


def test_parse_and_dump_carry_typed_records(tmp_path):
    path = tmp_path / "log.jsonl"
    log = _log(
        path,
        parse=lambda d: complex(d["re"], d["im"]),
        dump=lambda c: {"re": c.real, "im": c.imag},
    )
    log.append(1 + 2j)
    assert json.loads(path.read_text()) == {"im": 2.0, "re": 1.0}
    assert _log(path, parse=lambda d: complex(d["re"], d["im"])).records == [1 + 2j]


def test_rewrite_replaces_every_line(tmp_path):
    path = tmp_path / "log.jsonl"
    log = _log(path)
    for n in range(3):
        log.append({"n": n})
    log.rewrite([{"n": 0}, {"n": 2}])
    assert path.read_text() == '{"n": 0}\n{"n": 2}\n'
    assert log.records == [{"n": 0}, {"n": 2}]
    assert not (tmp_path / "log.jsonl.partial").exists()
