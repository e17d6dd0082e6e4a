from datetime import date

from spans.merge import gaps
from spans.range import DateRange


def r(first: int, end: int) -> DateRange:
    return DateRange(date(2024, 1, first), date(2024, 1, end))


def test_no_ranges_leave_the_whole_span():
    assert gaps([], within=r(1, 10)) == [r(1, 10)]


def test_range_running_past_the_end():
    assert gaps([r(5, 20)], within=r(1, 10)) == [r(1, 5)]
