import pytest

from numerals.roman import from_roman, is_valid, to_roman


def test_to_roman():
    assert to_roman(1994) == "MCMXCIV"
    assert to_roman(4) == "IV"
    assert to_roman(3888) == "MMMDCCCLXXXVIII"


def test_to_roman_out_of_range():
    with pytest.raises(ValueError):
        to_roman(0)


def test_not_numerals_are_invalid():
    assert not is_valid("")
    assert not is_valid("ABC")


def test_from_roman_additive():
    assert from_roman("VIII") == 8


def test_from_roman_subtractive():
    assert from_roman("MCMXCIV") == 1994
