"""Sliding-window statistics over lists of numbers."""

from itertools import pairwise


def moving_sum(xs, window):
    """The sums of every run of `window` consecutive items, in order."""
    if window <= 0:
        raise ValueError("window must be positive")
    return [sum(xs[end - window : end]) for end in range(window, len(xs))]


def moving_average(xs, window):
    return [total / window for total in moving_sum(xs, window)]


def cumulative(xs):
    out, total = [], 0
    for x in xs:
        total += x
        out.append(total)
    return out


def differences(xs):
    return [b - a for a, b in pairwise(xs)]
