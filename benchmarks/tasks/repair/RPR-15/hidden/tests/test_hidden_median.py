from central.measures import median


def test_even_lengths_average_the_middle_pair():
    assert median([1, 2, 3, 4]) == 2.5
    assert median([10, 0]) == 5
    assert median([8, 1, 6, 3, 2, 7]) == 4.5


def test_odd_lengths_take_the_middle():
    assert median([7]) == 7
    assert median([9, 1, 8, 2, 5]) == 5
    assert median([1, 1, 100]) == 1
