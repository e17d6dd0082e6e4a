from maxstack.stack import MaxStack


def test_max_tracks_every_pop():
    s = MaxStack()
    values = [5, 1, 9, 9, 3, 12, 2]
    for v in values:
        s.push(v)
    for n in range(len(values), 0, -1):
        assert s.max() == max(values[:n])
        assert s.pop() == values[n - 1]
    assert len(s) == 0
