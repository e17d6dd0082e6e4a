import pytest

from quantiles.percentiles import percentile


def test_between_neighbours_and_monotone():
    xs = [3, 8, 20, 21, 50]
    last = None
    for p in range(101):
        v = percentile(xs, p)
        assert xs[0] <= v <= xs[-1]
        assert last is None or v >= last
        last = v


def test_values():
    assert percentile([0, 10], 25) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4], 75) == pytest.approx(3.25)
    assert percentile([7], 30) == 7
