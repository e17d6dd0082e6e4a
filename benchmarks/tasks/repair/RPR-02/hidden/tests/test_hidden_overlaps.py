from spanlib.intervals import intersection, overlaps


def test_overlaps_agrees_with_intersection():
    points = range(7)
    spans = [(s, e) for s in points for e in points if s <= e]
    for a in spans:
        for b in spans:
            assert overlaps(a, b) == (intersection(a, b) is not None), (a, b)


def test_nested_intervals_overlap():
    assert overlaps((1, 10), (4, 5))
    assert overlaps((4, 5), (1, 10))
