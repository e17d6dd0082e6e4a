import pytest

from series.window import cumulative, differences, moving_average, moving_sum


def test_moving_sum_includes_the_last_window():
    assert moving_sum([1, 2, 3, 4], 2) == [3, 5, 7]


def test_moving_average_of_a_whole_list():
    assert moving_average([2, 4, 6], 3) == [4.0]


def test_window_must_be_positive():
    with pytest.raises(ValueError):
        moving_sum([1, 2], 0)


def test_moving_sum_of_too_short_a_list():
    assert moving_sum([1, 2], 5) == []


def test_cumulative():
    assert cumulative([1, 2, 3]) == [1, 3, 6]


def test_differences():
    assert differences([1, 4, 9, 16]) == [3, 5, 7]
