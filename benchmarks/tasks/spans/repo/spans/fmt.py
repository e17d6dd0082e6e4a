"""Human-friendly text for date ranges: "5–9 Jan 2024", "30 Jan – 2 Feb 2024"."""

from __future__ import annotations

from spans.range import DateRange

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DASH = "–"  # an en dash, as in print


def humanize(span: DateRange) -> str:
    """The range as a person would write it, both ends included, with as little repetition as
    reads naturally: '5 Jan 2024', '5–9 Jan 2024', '30 Jan – 2 Feb 2024',
    '30 Dec 2023 – 2 Jan 2024'."""
    first, last = span.start, span.last
    if first == last:
        return f"{first.day} {_month(first)} {first.year}"
    if first.month == last.month:
        return f"{first.day}{DASH}{last.day} {_month(last)} {last.year}"
    return f"{first.day} {_month(first)} {DASH} {last.day} {_month(last)} {last.year}"


def _month(day):
    return MONTHS[day.month - 1]
