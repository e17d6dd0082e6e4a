import pytest

from csvlite.fields import column, join_fields, parse_row, split_fields


def test_split_plain_fields():
    assert split_fields("a,b,c") == ["a", "b", "c"]


def test_parse_row():
    assert parse_row("1,2.5", [int, float]) == [1, 2.5]


def test_parse_row_wrong_count():
    with pytest.raises(ValueError):
        parse_row("1,2", [int])


def test_join_fields():
    assert join_fields([1, "x", 2.5]) == "1,x,2.5"


def test_split_strips_spaces():
    assert split_fields("a, b ,c") == ["a", "b", "c"]


def test_column_strips_spaces():
    assert column([" x,1", "y ,2"], 0) == ["x", "y"]
