"""Unions and gaps of date ranges."""

from __future__ import annotations

from collections.abc import Iterable

from spans.range import DateRange


def merge(ranges: Iterable[DateRange]) -> list[DateRange]:
    """The union of `ranges` as the fewest disjoint ranges, in order. Ranges that touch
    (one ends where the next starts) are joined; empty ranges add nothing."""
    out: list[DateRange] = []
    for r in ranges:
        if out and out[-1].overlaps(r):
            out[-1] = DateRange(out[-1].start, max(out[-1].end, r.end))
        else:
            out.append(r)
    return out


def gaps(ranges: Iterable[DateRange], within: DateRange) -> list[DateRange]:
    """The parts of `within` that none of `ranges` cover, in order."""
    out: list[DateRange] = []
    cursor = within.start
    for r in merge(ranges):
        if r.end <= within.start or r.start >= within.end:
            continue
        if r.start > cursor:
            out.append(DateRange(cursor, r.start))
        cursor = max(cursor, r.end)
    return out


def total_days(ranges: Iterable[DateRange]) -> int:
    """How many distinct days the ranges cover together."""
    total = 0
    for index, r in enumerate(merge(ranges)):
        total += r.days
    return total
