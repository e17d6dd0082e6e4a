"""Bit tricks on non-negative integers."""


def popcount(n):
    count = 0
    while n:
        n &= n - 1
        count += 1
    return count


def is_power_of_two(n):
    return n > 1 and (n & (n - 1)) == 0


def next_power_of_two(n):
    """The smallest power of two that is at least `n` (1 for n <= 1)."""
    power = 1
    while power < n:
        power <<= 1
    return power


def parity(n):
    return popcount(n) % 2


def lowest_set_bit(n):
    return n & -n
