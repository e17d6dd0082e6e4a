import pytest

from quantiles.percentiles import five_number_summary, iqr, percentile, quartiles


def test_exact_ranks():
    xs = [5, 1, 4, 2, 3]
    assert percentile(xs, 0) == 1
    assert percentile(xs, 50) == 3
    assert percentile(xs, 100) == 5


def test_errors():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_quartiles_and_iqr():
    assert quartiles([1, 2, 3, 4, 5]) == (2, 3, 4)
    assert iqr([1, 2, 3, 4, 5]) == 2


def test_five_number_summary():
    assert five_number_summary([1, 2, 3, 4, 5]) == (1, 2, 3, 4, 5)


def test_interpolates_between_ranks():
    assert percentile([10, 20, 40, 80], 50) == 30.0


def test_ninetieth_percentile():
    assert percentile(list(range(1, 11)), 90) == pytest.approx(9.1)
