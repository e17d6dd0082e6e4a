import pytest

from maxstack.stack import MaxStack


def test_push_peek_len():
    s = MaxStack()
    s.push(3)
    s.push(1)
    assert s.peek() == 1
    assert len(s) == 2


def test_max_of_pushed_items():
    s = MaxStack()
    for v in (2, 7, 4):
        s.push(v)
    assert s.max() == 7


def test_pop_returns_the_top():
    s = MaxStack()
    s.push(1)
    s.push(2)
    assert s.pop() == 2
    assert len(s) == 1


def test_pop_empty():
    with pytest.raises(IndexError):
        MaxStack().pop()


def test_max_after_pop():
    s = MaxStack()
    s.push(1)
    s.push(5)
    s.pop()
    assert s.max() == 1


def test_max_of_emptied_stack():
    s = MaxStack()
    s.push(3)
    s.pop()
    with pytest.raises(ValueError):
        s.max()
