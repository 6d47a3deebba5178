from mnas.io.tables import format_table


def test_numbers_right_text_left_one_rule():
    table = format_table(
        ("name", "ms", "params"),
        [("a1", 6.1234, 3_900_000), ("small", 1234.5, 2)],
    )
    assert table.splitlines() == [
        "name        ms     params",
        "-----  -------  ---------",
        "a1       6.123  3,900,000",
        "small  1,234.5          2",
    ]


def test_a_column_with_any_text_is_left_aligned():
    table = format_table(("v",), [(1,), ("-",)])
    assert table.splitlines() == ["v", "-", "1", "-"]
