from sortkit.merging import is_sorted, merge


def first(pair):
    return pair[0]


def test_merge_is_sorted_and_complete():
    a, b = [1, 1, 4, 9, 12], [0, 1, 5, 9, 13, 20]
    out = merge(a, b)
    assert is_sorted(out) and sorted(out) == sorted(a + b)


def test_stable_on_many_ties():
    a = [(1, "a1"), (2, "a2"), (2, "a3")]
    b = [(1, "b1"), (2, "b2"), (3, "b3")]
    assert merge(a, b, key=first) == [(1, "a1"), (1, "b1"), (2, "a2"), (2, "a3"), (2, "b2"), (3, "b3")]
