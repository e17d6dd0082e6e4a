from calendrical.years import day_of_year, days_in_year, is_leap


def test_leap_rule():
    leaps = {y for y in range(1800, 2101) if is_leap(y)}
    assert 1800 not in leaps and 1900 not in leaps and 2100 not in leaps
    assert 2000 in leaps and 2004 in leaps and 1804 in leaps
    assert len(leaps) == 73


def test_leap_year_lengths():
    assert days_in_year(2024) == 366
    assert day_of_year(2024, 12, 31) == 366
