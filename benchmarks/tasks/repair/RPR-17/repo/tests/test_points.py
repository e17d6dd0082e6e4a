from numberline.points import distance, midpoint, nearest, spread, within


def test_midpoint():
    assert midpoint(2, 8) == 5


def test_nearest():
    assert nearest([1, 5, 9], 6) == 5
    assert nearest([1, 3], 2) == 1


def test_within():
    assert within(1.0, 1.05, 0.1)
    assert not within(1.0, 1.5, 0.1)


def test_spread():
    assert spread([4, -2, 7]) == 9


def test_distance_is_never_negative():
    assert distance(7, 3) == 4
