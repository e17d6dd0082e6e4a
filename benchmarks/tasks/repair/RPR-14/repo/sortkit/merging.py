"""Merging lists that are already sorted."""

from itertools import pairwise


def _identity(item):
    return item


def merge(a, b, key=None):
    """One sorted list from the sorted lists `a` and `b`; on ties, items of `a` come first."""
    key = key or _identity
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        if key(a[i]) >= key(b[j]):
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    out.extend(a[i:])
    out.extend(b[j:])
    return out


def merge_many(lists, key=None):
    result = []
    for items in lists:
        result = merge(result, items, key)
    return result


def is_sorted(xs, key=None):
    key = key or _identity
    return all(key(x) <= key(y) for x, y in pairwise(xs))


def dedupe_sorted(xs):
    out = []
    for x in xs:
        if not out or out[-1] != x:
            out.append(x)
    return out
