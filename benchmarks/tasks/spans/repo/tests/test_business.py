from datetime import date

import pytest

from spans.business import add_business_days, business_days, is_business_day
from spans.range import DateRange


def test_is_business_day():
    assert is_business_day(date(2024, 1, 5))  # a Friday
    assert not is_business_day(date(2024, 1, 6))  # a Saturday
    assert not is_business_day(date(2024, 1, 5), holidays={date(2024, 1, 5)})


def test_business_days_in_a_month(january):
    assert business_days(january) == 23


def test_business_days_minus_holidays(january):
    assert business_days(january, [date(2024, 1, 1)]) == 22


def test_duplicate_holidays_count_once(january):
    assert business_days(january, [date(2024, 1, 1), date(2024, 1, 1)]) == 22


def test_weekend_holidays_do_not_count_twice():
    december = DateRange(date(2022, 12, 1), date(2023, 1, 1))
    # 25 December 2022 is a Sunday: it was never a business day.
    assert business_days(december, [date(2022, 12, 25), date(2022, 12, 26)]) == 21


def test_add_business_days():
    friday = date(2024, 1, 5)
    assert add_business_days(friday, 0) == friday
    assert add_business_days(friday, 1) == date(2024, 1, 8)
    assert add_business_days(date(2024, 1, 6), 0) == date(2024, 1, 8)
    assert add_business_days(friday, 1, holidays=[date(2024, 1, 8)]) == date(2024, 1, 9)


def test_add_business_days_refuses_negative():
    with pytest.raises(ValueError):
        add_business_days(date(2024, 1, 5), -1)
