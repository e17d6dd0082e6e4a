from numberline.points import distance


def test_distance_both_ways():
    assert distance(3, 7) == 4
    assert distance(7, 3) == 4
    assert distance(-2, 2) == 4
    assert distance(5, 5) == 0
