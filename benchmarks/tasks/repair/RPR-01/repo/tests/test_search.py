from searchkit.search import binary_search, count_in_range, lower_bound, upper_bound


def test_finds_the_middle_item():
    assert binary_search([1, 3, 5, 7, 9], 5) == 2


def test_finds_the_first_of_two():
    assert binary_search([2, 4], 2) == 0


def test_absent_item_gives_minus_one():
    assert binary_search([1, 3, 5], 4) == -1
    assert binary_search([], 1) == -1


def test_finds_the_last_item():
    assert binary_search([1, 3, 5, 7], 7) == 3


def test_single_item_list():
    assert binary_search([4], 4) == 0


def test_lower_bound():
    assert lower_bound([1, 2, 2, 3], 2) == 1
    assert lower_bound([1, 2, 2, 3], 9) == 4


def test_upper_bound():
    assert upper_bound([1, 2, 2, 3], 2) == 3
    assert upper_bound([1, 2, 2, 3], 0) == 0


def test_count_in_range():
    assert count_in_range([1, 2, 2, 3, 5, 8], 2, 5) == 4
    assert count_in_range([1, 2, 3], 3, 1) == 0
