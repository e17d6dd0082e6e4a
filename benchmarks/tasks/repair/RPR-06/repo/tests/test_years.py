import pytest

from calendrical.years import day_of_year, days_in_month, days_in_year, is_leap


def test_common_years():
    assert not is_leap(2023)
    assert not is_leap(2019)


def test_ordinary_leap_years():
    assert is_leap(2024)
    assert is_leap(1996)


def test_century_years():
    assert is_leap(2000)
    assert not is_leap(1900)


def test_days_in_month():
    assert days_in_month(2023, 2) == 28
    assert days_in_month(2000, 2) == 29
    assert days_in_month(2023, 12) == 31


def test_no_month_thirteen():
    with pytest.raises(ValueError):
        days_in_month(2023, 13)


def test_days_in_year():
    assert days_in_year(2023) == 365


def test_day_of_year():
    assert day_of_year(2023, 3, 1) == 60
