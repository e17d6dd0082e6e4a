from workweek.days import (
    add_days,
    business_days_in,
    is_weekend,
    name,
    next_business_day,
)


def test_weekdays_are_not_weekend():
    assert not any(is_weekend(d) for d in range(5))


def test_name():
    assert name(0) == "Mon"
    assert name(9) == "Wed"


def test_add_days_wraps():
    assert add_days(5, 3) == 1


def test_next_business_day_midweek():
    assert next_business_day(1) == 2


def test_business_days_in_a_working_week():
    assert business_days_in(0, 5) == 5


def test_saturday_is_weekend():
    assert is_weekend(5)
