from datetime import date

from spans.range import DateRange


def test_an_empty_range_overlaps_nothing():
    empty = DateRange(date(2024, 1, 5), date(2024, 1, 5))
    span = DateRange(date(2024, 1, 1), date(2024, 1, 10))
    assert not empty.overlaps(span)
    assert not span.overlaps(empty)


def test_overlap_of_contained_ranges_is_symmetric():
    outer = DateRange(date(2024, 1, 1), date(2024, 2, 1))
    inner = DateRange(date(2024, 1, 10), date(2024, 1, 11))
    assert outer.overlaps(inner) and inner.overlaps(outer)
