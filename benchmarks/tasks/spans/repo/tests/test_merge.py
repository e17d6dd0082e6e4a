from datetime import date

from spans.merge import gaps, merge, total_days
from spans.range import DateRange


def r(first: int, end: int, month: int = 1) -> DateRange:
    return DateRange(date(2024, month, first), date(2024, month, end))


def test_merge_overlapping():
    assert merge([r(1, 10), r(5, 15), r(20, 25)]) == [r(1, 15), r(20, 25)]


def test_merge_joins_touching_ranges():
    assert merge([r(1, 5), r(5, 10)]) == [r(1, 10)]


def test_merge_contained_range():
    assert merge([r(1, 20), r(5, 10)]) == [r(1, 20)]


def test_merge_nothing():
    assert merge([]) == []


def test_merge_unsorted_input():
    assert merge([r(20, 25), r(1, 10), r(5, 15)]) == [r(1, 15), r(20, 25)]


def test_gaps_between_ranges():
    assert gaps([r(3, 5), r(10, 12)], within=r(1, 12)) == [r(1, 3), r(5, 10)]


def test_gaps_ignore_ranges_outside(january):
    outside = DateRange(date(2023, 12, 1), date(2023, 12, 5))
    assert gaps([outside, january], within=january) == []


def test_gaps_include_the_tail():
    assert gaps([r(3, 5)], within=r(1, 10)) == [r(1, 3), r(5, 10)]


def test_total_days():
    assert total_days([r(1, 10), r(5, 15)]) == 14
