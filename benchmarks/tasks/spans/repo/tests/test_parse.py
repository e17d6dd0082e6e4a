from datetime import date

import pytest

from spans.parse import parse
from spans.range import DateRange


def test_day():
    assert parse("2024-01-05") == DateRange(date(2024, 1, 5), date(2024, 1, 6))


def test_month():
    assert parse("2024-02") == DateRange(date(2024, 2, 1), date(2024, 3, 1))
    assert parse("2024-12") == DateRange(date(2024, 12, 1), date(2025, 1, 1))


def test_year():
    assert parse("2023") == DateRange(date(2023, 1, 1), date(2024, 1, 1))


def test_week_in_a_year_that_starts_on_monday():
    assert parse("2024-W01") == DateRange(date(2024, 1, 1), date(2024, 1, 8))
    assert parse("2024-W10") == DateRange(date(2024, 3, 4), date(2024, 3, 11))


def test_iso_week_one_holds_the_first_thursday():
    # 1 Jan 2021 is a Friday: ISO week 1 of 2021 starts on Monday 4 January.
    assert parse("2021-W01") == DateRange(date(2021, 1, 4), date(2021, 1, 11))
    # 1 Jan 2026 is a Thursday: week 1 starts on Monday 29 December 2025.
    assert parse("2026-W01") == DateRange(date(2025, 12, 29), date(2026, 1, 5))


def test_inclusive_span():
    assert parse("2024-01-05..2024-01-09") == DateRange(date(2024, 1, 5), date(2024, 1, 10))
    assert parse(" 2024-01..2024-03 ") == DateRange(date(2024, 1, 1), date(2024, 4, 1))


@pytest.mark.parametrize("text", ["", "2024-13", "2024-02-30", "yesterday", "2024-W00"])
def test_garbage(text):
    with pytest.raises(ValueError, match="not a date range"):
        parse(text)
