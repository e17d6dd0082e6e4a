"""Date ranges from text: a day, a month, an ISO week, a year, or `FIRST..LAST`."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from spans.range import ONE_DAY, DateRange

_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_YEAR = re.compile(r"\d{4}")


def parse(text: str) -> DateRange:
    """`2024-01-05` (one day), `2024-01` (a month), `2024-W03` (an ISO week, Monday to Sunday),
    `2024` (a year), or `FIRST..LAST` where both ends are any of those and both are included
    (`2024-01-05..2024-01-09`, `2024-01..2024-03`)."""
    text = text.strip()
    if ".." in text:
        first, _, last = text.partition("..")
        return DateRange.inclusive(parse(first).start, parse(last).last)
    if m := _DAY.fullmatch(text):
        day = _date(int(m[1]), int(m[2]), int(m[3]), text)
        return DateRange(day, day + ONE_DAY)
    if m := _WEEK.fullmatch(text):
        return _week(int(m[1]), int(m[2]), text)
    if m := _MONTH.fullmatch(text):
        start = _date(int(m[1]), int(m[2]), 1, text)
        return DateRange(start, _next_month(start))
    if _YEAR.fullmatch(text):
        year = int(text)
        return DateRange(date(year, 1, 1), date(year + 1, 1, 1))
    raise ValueError(f"not a date range: {text!r}")


def _date(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"not a date range: {text!r} ({exc})") from exc


def _week(year: int, week: int, text: str) -> DateRange:
    """ISO week `week` of `year`: Monday to Sunday."""
    if not 1 <= week <= 53:
        raise ValueError(f"not a date range: {text!r} (weeks are numbered 1 to 53)")
    jan1 = date(year, 1, 1)
    monday = jan1 - timedelta(days=jan1.weekday()) + timedelta(weeks=week - 1)
    return DateRange(monday, monday + timedelta(days=7))


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
