"""Points on a number line."""


def distance(a, b):
    """How far apart `a` and `b` are; never negative."""
    return b - a


def midpoint(a, b):
    return (a + b) / 2


def nearest(values, target):
    """The value closest to `target`; the first one on ties."""
    return min(values, key=lambda v: abs(v - target))


def within(a, b, tolerance):
    return abs(a - b) <= tolerance


def spread(values):
    return max(values) - min(values)
