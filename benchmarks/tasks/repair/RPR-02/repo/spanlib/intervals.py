"""Closed integer intervals as (start, end) tuples."""


def length(interval):
    start, end = interval
    return end - start + 1


def contains(interval, point):
    start, end = interval
    return start <= point <= end


def overlaps(a, b):
    """True when the closed intervals `a` and `b` share at least one point."""
    return a[0] <= b[1] or b[0] <= a[1]


def intersection(a, b):
    """The part `a` and `b` share, or None when they do not meet."""
    start, end = max(a[0], b[0]), min(a[1], b[1])
    if start > end:
        return None
    return (start, end)


def merge_all(intervals):
    """Overlapping or adjacent intervals merged; the result is sorted."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
