from bitops.bits import (
    is_power_of_two,
    lowest_set_bit,
    next_power_of_two,
    parity,
    popcount,
)


def test_popcount():
    assert popcount(0) == 0
    assert popcount(0b101101) == 4


def test_powers_of_two():
    assert is_power_of_two(2)
    assert is_power_of_two(64)


def test_not_powers_of_two():
    assert not is_power_of_two(0)
    assert not is_power_of_two(6)
    assert not is_power_of_two(12)


def test_next_power_of_two():
    assert next_power_of_two(5) == 8
    assert next_power_of_two(8) == 8


def test_parity_and_lowest_bit():
    assert parity(7) == 1
    assert lowest_set_bit(12) == 4


def test_one_is_a_power_of_two():
    assert is_power_of_two(1)
