"""Greatest common divisors and friends, for any integers."""


def gcd(a, b):
    """The greatest common divisor, never negative; gcd(0, 0) is 0."""
    while b:
        a, b = b, a % b
    return a


def lcm(a, b):
    if a == 0 or b == 0:
        return 0
    return abs(a * b) // gcd(a, b)


def coprime(a, b):
    return gcd(a, b) == 1


def reduce_fraction(num, den):
    """num/den in lowest terms, with a positive denominator."""
    if den == 0:
        raise ValueError("zero denominator")
    g = gcd(num, den)
    if den < 0:
        g = -g
    return num // g, den // g
