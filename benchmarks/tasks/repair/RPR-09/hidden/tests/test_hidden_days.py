from datetime import date, timedelta

from dayspan.ranges import days_inclusive, each_day


def test_agrees_with_each_day():
    start = date(2023, 12, 25)
    for n in range(40):
        end = start + timedelta(days=n)
        assert days_inclusive(start, end) == len(each_day(start, end)) == n + 1


def test_across_a_leap_day():
    assert days_inclusive(date(2024, 2, 1), date(2024, 3, 1)) == 30
