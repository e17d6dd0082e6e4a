from workweek.days import business_days_in, is_weekend, next_business_day


def test_both_weekend_days():
    assert [d for d in range(7) if is_weekend(d)] == [5, 6]


def test_friday_to_monday():
    assert next_business_day(4) == 0
    assert next_business_day(5) == 0
    assert next_business_day(6) == 0


def test_business_days_in_two_weeks():
    assert business_days_in(0, 14) == 10
    assert business_days_in(3, 7) == 5
