from spanlib.intervals import contains, intersection, length, merge_all, overlaps


def test_length_counts_both_ends():
    assert length((3, 7)) == 5
    assert length((4, 4)) == 1


def test_contains():
    assert contains((1, 5), 1)
    assert contains((1, 5), 5)
    assert not contains((1, 5), 6)


def test_overlapping_intervals_overlap():
    assert overlaps((1, 5), (3, 8))
    assert overlaps((3, 8), (1, 5))


def test_intervals_sharing_an_end_overlap():
    assert overlaps((1, 3), (3, 4))


def test_disjoint_intervals_do_not_overlap():
    assert not overlaps((1, 3), (5, 8))
    assert not overlaps((5, 8), (1, 3))


def test_intersection():
    assert intersection((1, 5), (3, 8)) == (3, 5)
    assert intersection((1, 2), (4, 5)) is None


def test_merge_all():
    assert merge_all([(5, 6), (1, 3), (2, 4), (8, 9)]) == [(1, 6), (8, 9)]
