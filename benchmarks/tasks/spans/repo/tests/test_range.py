from datetime import date

import pytest

from spans.range import DateRange


def d(day: int, month: int = 1, year: int = 2024) -> date:
    return date(year, month, day)


def test_days_and_last(january):
    assert january.days == 31
    assert january.last == d(31)


def test_inclusive():
    assert DateRange.inclusive(d(5), d(9)) == DateRange(d(5), d(10))


def test_empty_range_is_allowed():
    empty = DateRange(d(5), d(5))
    assert empty.is_empty()
    assert empty.days == 0
    assert list(empty) == []
    with pytest.raises(ValueError):
        _ = empty.last


def test_backwards_range_is_refused():
    with pytest.raises(ValueError, match="ends before"):
        DateRange(d(5), d(4))


def test_contains(january):
    assert d(1) in january
    assert d(31) in january
    assert d(1, 2) not in january
    assert "2024-01-05" not in january


def test_iter():
    assert list(DateRange(d(30), d(2, 2))) == [d(30), d(31), d(1, 2)]


def test_overlapping_ranges_overlap():
    assert DateRange(d(1), d(10)).overlaps(DateRange(d(9), d(20)))
    assert DateRange(d(9), d(20)).overlaps(DateRange(d(1), d(10)))
    assert DateRange(d(1), d(30)).overlaps(DateRange(d(5), d(6)))


def test_disjoint_ranges_do_not_overlap():
    assert not DateRange(d(1), d(5)).overlaps(DateRange(d(10), d(20)))


def test_adjacent_ranges_do_not_overlap():
    first, second = DateRange(d(1), d(5)), DateRange(d(5), d(10))
    assert not first.overlaps(second)
    assert not second.overlaps(first)


def test_intersection():
    assert DateRange(d(1), d(10)).intersection(DateRange(d(5), d(20))) == DateRange(d(5), d(10))
    assert DateRange(d(1), d(5)).intersection(DateRange(d(5), d(10))) is None


def test_shift_and_str():
    assert DateRange(d(1), d(3)).shift(7) == DateRange(d(8), d(10))
    assert str(DateRange(d(1), d(3))) == "2024-01-01..2024-01-02"
    assert str(DateRange(d(1), d(2))) == "2024-01-01"
    assert str(DateRange(d(1), d(1))) == "2024-01-01 (empty)"


def test_months_splits_at_month_boundaries():
    span = DateRange(d(20), d(10, 3))
    assert span.months() == [
        DateRange(d(20), d(1, 2)),
        DateRange(d(1, 2), d(1, 3)),
        DateRange(d(1, 3), d(10, 3)),
    ]
