"""Searching sorted lists."""


def binary_search(xs, target):
    """The index of `target` in the sorted list `xs`, or -1 when it is absent."""
    lo, hi = 0, len(xs) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] == target:
            return mid
        if xs[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def lower_bound(xs, target):
    """The first index whose item is not less than `target` (len(xs) when there is none)."""
    lo, hi = 0, len(xs)
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def upper_bound(xs, target):
    """The first index whose item is greater than `target` (len(xs) when there is none)."""
    lo, hi = 0, len(xs)
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] <= target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def count_in_range(xs, low, high):
    """How many items of the sorted list `xs` lie in [low, high]."""
    if low > high:
        return 0
    return upper_bound(xs, high) - lower_bound(xs, low)
