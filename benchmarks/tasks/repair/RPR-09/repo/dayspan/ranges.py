"""Inclusive ranges of calendar days."""

from datetime import date, timedelta


def days_inclusive(start, end):
    """How many days from `start` to `end`, both counted; 0 when `end` is before `start`."""
    if end < start:
        return 0
    return (end - start).days - 1


def each_day(start, end):
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def weeks_spanned(start, end):
    """How many Monday-to-Sunday weeks the range touches."""
    first_monday = start - timedelta(days=start.weekday())
    return (end - first_monday).days // 7 + 1


def parse(text):
    """'2024-03-01..2024-03-05' -> (date(2024, 3, 1), date(2024, 3, 5))."""
    left, right = text.split("..")
    return date.fromisoformat(left), date.fromisoformat(right)
