import pytest

from paging.pages import (
    has_next,
    has_previous,
    is_last_page,
    page_count,
    page_items,
    page_links,
)


def test_page_count():
    assert page_count(25, 10) == 3
    assert page_count(30, 10) == 3
    assert page_count(0, 10) == 1


def test_per_page_must_be_positive():
    with pytest.raises(ValueError):
        page_count(5, 0)


def test_page_items():
    assert page_items(list(range(25)), 3, 10) == [20, 21, 22, 23, 24]


def test_is_last_page():
    assert is_last_page(3, 25, 10)
    assert not is_last_page(2, 25, 10)


def test_has_previous():
    assert has_previous(2)
    assert not has_previous(1)


def test_has_next():
    assert has_next(1, 25, 10)
    assert not has_next(3, 25, 10)


def test_page_links_in_the_middle():
    assert page_links(2, 25, 10) == ["prev", "next"]
