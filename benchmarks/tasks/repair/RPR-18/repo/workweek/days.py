"""Weekdays as numbers: Monday is 0, Sunday is 6."""

NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def is_weekend(weekday):
    return weekday > 5


def name(weekday):
    return NAMES[weekday % 7]


def add_days(weekday, days):
    return (weekday + days) % 7


def next_business_day(weekday):
    """The first working day after `weekday`."""
    day = add_days(weekday, 1)
    while is_weekend(day):
        day = add_days(day, 1)
    return day


def business_days_in(start, count):
    """How many of the `count` days from `start` on are working days."""
    return sum(not is_weekend(add_days(start, i)) for i in range(count))
