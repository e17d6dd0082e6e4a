from searchkit.search import binary_search


def test_every_item_is_found_at_its_index():
    for xs in ([2], [2, 4], [2, 4, 6], [1, 3, 5, 7, 9, 11, 13]):
        for i, x in enumerate(xs):
            assert binary_search(xs, x) == i


def test_absent_items_on_either_side_and_between():
    xs = [10, 20, 30, 40, 50]
    for target in (5, 15, 25, 35, 45, 55):
        assert binary_search(xs, target) == -1
    assert binary_search([7], 3) == -1
    assert binary_search([7], 9) == -1


def test_duplicates_give_an_index_of_an_equal_item():
    xs = [1, 2, 2, 2, 3]
    assert xs[binary_search(xs, 2)] == 2
