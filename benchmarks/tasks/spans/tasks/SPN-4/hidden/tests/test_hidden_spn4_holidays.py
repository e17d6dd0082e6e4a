from datetime import date

from spans.business import business_days
from spans.range import DateRange

WEEK = DateRange(date(2024, 1, 1), date(2024, 1, 8))  # Monday to Sunday


def test_holidays_outside_the_span_are_ignored():
    assert business_days(WEEK, iter([date(2024, 2, 1), date(2024, 1, 3)])) == 4


def test_saturday_holiday_in_a_week():
    assert business_days(WEEK, (date(2024, 1, 6),)) == 5
