from datetime import date

from spans.range import DateRange


def test_months_of_a_range_within_one_month():
    span = DateRange(date(2024, 1, 3), date(2024, 1, 9))
    assert span.months() == [span]


def test_months_across_a_year_end():
    span = DateRange(date(2023, 12, 15), date(2024, 1, 2))
    assert span.months() == [
        DateRange(date(2023, 12, 15), date(2024, 1, 1)),
        DateRange(date(2024, 1, 1), date(2024, 1, 2)),
    ]
