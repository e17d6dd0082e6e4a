"""Clamping and rescaling numbers between bounds."""


def clamp(x, lo, hi):
    """`x` limited to [lo, hi]."""
    if lo > hi:
        raise ValueError("lo must not exceed hi")
    return max(lo, min(x, hi))


def lerp(lo, hi, t):
    """The point a fraction `t` of the way from `lo` to `hi`."""
    return lo + (hi - lo) * t


def normalize(x, lo, hi):
    """Where `x` lies in [lo, hi], as a fraction in [0, 1]; values outside are clamped first."""
    return (clamp(x, hi, lo) - lo) / (hi - lo)


def rescale(x, src, dst):
    """`x` mapped from the range `src` onto the range `dst` (each a pair of bounds)."""
    return lerp(dst[0], dst[1], normalize(x, src[0], src[1]))
