from datetime import date

from spans.merge import gaps, merge
from spans.range import DateRange


def r(first: int, end: int) -> DateRange:
    return DateRange(date(2024, 1, first), date(2024, 1, end))


def test_empty_ranges_add_nothing():
    assert merge([r(5, 5)]) == []
    assert merge([r(10, 12), r(3, 3), r(1, 2)]) == [r(1, 2), r(10, 12)]


def test_gaps_of_unsorted_ranges():
    assert gaps([r(10, 12), r(3, 5)], within=r(1, 12)) == [r(1, 3), r(5, 10)]
