from series.window import moving_average, moving_sum


def test_window_count():
    xs = list(range(10))
    for window in range(1, 11):
        assert len(moving_sum(xs, window)) == len(xs) - window + 1


def test_window_of_one_is_the_list():
    assert moving_sum([5, 6, 7], 1) == [5, 6, 7]


def test_moving_average_values():
    assert moving_average([1, 2, 3, 4, 5], 2) == [1.5, 2.5, 3.5, 4.5]
    assert moving_average([], 3) == []
