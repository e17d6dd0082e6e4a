"""Percentiles with linear interpolation between the closest ranks."""

import math


def percentile(values, p):
    """The p-th percentile (0 to 100) of `values`."""
    if not values:
        raise ValueError("no values")
    if not 0 <= p <= 100:
        raise ValueError(f"p out of range: {p}")
    xs = sorted(values)
    rank = p / 100 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    frac = rank - lo
    return xs[lo] - frac * (xs[hi] - xs[lo])


def quartiles(values):
    return tuple(percentile(values, p) for p in (25, 50, 75))


def iqr(values):
    q1, _, q3 = quartiles(values)
    return q3 - q1


def five_number_summary(values):
    q1, q2, q3 = quartiles(values)
    return (min(values), q1, q2, q3, max(values))
