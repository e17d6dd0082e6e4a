from grid.matrix import flatten, transpose


def test_flatten_orders():
    assert flatten([[9], [1, 5]]) == [9, 1, 5]
    assert flatten([]) == []
    m = [[6, 5, 4], [3, 2, 1]]
    assert flatten(transpose(m)) == [6, 3, 5, 2, 4, 1]


def test_flatten_leaves_the_matrix_alone():
    m = [[2, 1]]
    flatten(m)
    assert m == [[2, 1]]
