from numerals.roman import from_roman, is_valid, to_roman


def test_round_trip_all():
    for n in range(1, 4000):
        assert from_roman(to_roman(n)) == n


def test_validity():
    assert is_valid("XIV")
    assert not is_valid("IIII")
    assert not is_valid("VX")
