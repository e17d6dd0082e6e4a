from numtheory.divisors import gcd, lcm, reduce_fraction


def test_gcd_signs():
    for a in range(-12, 13):
        for b in range(-12, 13):
            g = gcd(a, b)
            assert g >= 0
            assert g == gcd(abs(a), abs(b))


def test_lcm_and_fractions_with_negatives():
    assert lcm(4, -6) == 12
    assert lcm(-3, -5) == 15
    assert reduce_fraction(-2, -4) == (1, 2)
    assert reduce_fraction(3, -9) == (-1, 3)
