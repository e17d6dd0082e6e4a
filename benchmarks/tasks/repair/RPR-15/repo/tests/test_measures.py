import pytest

from central.measures import mean, median, midrange, mode


def test_mean():
    assert mean([1, 2, 3, 6]) == 3


def test_mean_of_nothing():
    with pytest.raises(ValueError):
        mean([])


def test_median_of_nothing():
    with pytest.raises(ValueError):
        median([])


def test_mode():
    assert mode([3, 1, 3, 2, 1]) == 1


def test_midrange():
    assert midrange([4, 10, 7]) == 7


def test_median_of_odd_length():
    assert median([5, 1, 3]) == 3
