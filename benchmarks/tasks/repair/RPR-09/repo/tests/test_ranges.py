from datetime import date

from dayspan.ranges import days_inclusive, each_day, parse, weeks_spanned


def test_days_inclusive_counts_both_ends():
    assert days_inclusive(date(2024, 3, 1), date(2024, 3, 5)) == 5


def test_a_single_day():
    assert days_inclusive(date(2024, 3, 1), date(2024, 3, 1)) == 1


def test_end_before_start_is_empty():
    assert days_inclusive(date(2024, 3, 5), date(2024, 3, 1)) == 0


def test_each_day():
    days = each_day(date(2024, 2, 28), date(2024, 3, 1))
    assert days == [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]


def test_weeks_spanned():
    assert weeks_spanned(date(2024, 3, 4), date(2024, 3, 10)) == 1
    assert weeks_spanned(date(2024, 3, 10), date(2024, 3, 11)) == 2


def test_parse():
    assert parse("2024-03-01..2024-03-05") == (date(2024, 3, 1), date(2024, 3, 5))
