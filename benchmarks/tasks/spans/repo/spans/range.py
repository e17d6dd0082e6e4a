"""Half-open date ranges: `DateRange(start, end)` holds every day `d` with `start <= d < end`.
An empty range (`start == end`) is allowed; a range that ends before it starts is not."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, order=True)
class DateRange:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"range ends before it starts: {self.start} .. {self.end}")

    @classmethod
    def inclusive(cls, first: date, last: date) -> DateRange:
        """The range from `first` to `last`, both included."""
        return cls(first, last + ONE_DAY)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last(self) -> date:
        """The last day in the range."""
        if self.is_empty():
            raise ValueError("an empty range has no last day")
        return self.end - ONE_DAY

    def is_empty(self) -> bool:
        return self.start == self.end

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day < self.end

    def __iter__(self) -> Iterator[date]:
        day = self.start
        while day < self.end:
            yield day
            day += ONE_DAY

    def overlaps(self, other: DateRange) -> bool:
        """Whether the two ranges share at least one day."""
        return self.start <= other.end and other.start <= self.end

    def intersection(self, other: DateRange) -> DateRange | None:
        """The days both ranges hold, or None when they share none."""
        start, end = max(self.start, other.start), min(self.end, other.end)
        return DateRange(start, end) if start < end else None

    def shift(self, days: int) -> DateRange:
        delta = timedelta(days=days)
        return DateRange(self.start + delta, self.end + delta)

    def __str__(self) -> str:
        if self.is_empty():
            return f"{self.start} (empty)"
        if self.days == 1:
            return str(self.start)
        return f"{self.start}..{self.last}"
