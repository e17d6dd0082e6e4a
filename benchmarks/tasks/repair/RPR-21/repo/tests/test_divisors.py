import pytest

from numtheory.divisors import coprime, gcd, lcm, reduce_fraction


def test_gcd():
    assert gcd(12, 18) == 6
    assert gcd(7, 0) == 7
    assert gcd(0, 0) == 0


def test_lcm():
    assert lcm(4, 6) == 12
    assert lcm(0, 5) == 0


def test_coprime():
    assert coprime(8, 15)
    assert not coprime(8, 12)


def test_reduce_fraction():
    assert reduce_fraction(6, 8) == (3, 4)
    assert reduce_fraction(-6, 8) == (-3, 4)


def test_zero_denominator():
    with pytest.raises(ValueError):
        reduce_fraction(1, 0)


def test_gcd_is_never_negative():
    assert gcd(4, -6) == 2
    assert gcd(-4, -6) == 2


def test_reduce_fraction_moves_the_sign_up():
    assert reduce_fraction(2, -4) == (-1, 2)
