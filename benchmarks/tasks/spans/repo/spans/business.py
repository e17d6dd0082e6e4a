"""Business days: Monday to Friday, minus the holidays a caller names."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date

from spans.range import ONE_DAY, DateRange


def is_business_day(day: date, holidays: Collection[date] = ()) -> bool:
    return day.weekday() < 5 and day not in holidays


def business_days(span: DateRange, holidays: Iterable[date] = ()) -> int:
    """How many business days `span` holds."""
    weekdays = sum(1 for day in span if day.weekday() < 5)
    return weekdays - sum(1 for day in set(holidays) if day in span)


def add_business_days(start: date, n: int, holidays: Iterable[date] = ()) -> date:
    """The day `n` business days after `start` (`n` >= 0). With `n` = 0: `start` itself when it
    is a business day, else the next business day."""
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    off = set(holidays)
    day = start
    while not is_business_day(day, off):
        day += ONE_DAY
    for _ in range(n):
        day += ONE_DAY
        while not is_business_day(day, off):
            day += ONE_DAY
    return day
