from sortkit.merging import dedupe_sorted, is_sorted, merge, merge_many


def first(pair):
    return pair[0]


def test_merge_with_an_empty_list():
    assert merge([], [1, 2]) == [1, 2]
    assert merge([1, 2], []) == [1, 2]


def test_ties_keep_items_of_a_first():
    assert merge([(1, "a")], [(1, "b")], key=first) == [(1, "a"), (1, "b")]


def test_is_sorted():
    assert is_sorted([1, 2, 2, 5])
    assert not is_sorted([2, 1])


def test_dedupe_sorted():
    assert dedupe_sorted([1, 1, 2, 3, 3, 3]) == [1, 2, 3]


def test_merge_interleaves():
    assert merge([1, 4, 6], [2, 3, 7]) == [1, 2, 3, 4, 6, 7]


def test_merge_many():
    assert merge_many([[5, 9], [1, 7], [3]]) == [1, 3, 5, 7, 9]
