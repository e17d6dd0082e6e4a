from datetime import date

from spans.fmt import humanize
from spans.range import DateRange


def test_same_month_of_different_years():
    span = DateRange.inclusive(date(2023, 1, 5), date(2024, 1, 9))
    assert humanize(span) == "5 Jan 2023 – 9 Jan 2024"


def test_two_days_across_new_year():
    span = DateRange.inclusive(date(2024, 12, 31), date(2025, 1, 1))
    assert humanize(span) == "31 Dec 2024 – 1 Jan 2025"
