from csvlite.fields import column, parse_row, split_fields


def test_whitespace_everywhere():
    assert split_fields("  a ,\tb\t, c") == ["a", "b", "c"]
    assert split_fields(" , ") == ["", ""]
    assert parse_row(" x , 3 ", [str, int]) == ["x", 3]
    assert column(["k, v ", "k2,v2 "], 1) == ["v", "v2"]
