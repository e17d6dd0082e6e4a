from paging.pages import has_next, page_links


def test_has_next_everywhere():
    assert not has_next(3, 25, 10)
    assert not has_next(1, 5, 10)
    assert has_next(2, 30, 10)
    assert not has_next(3, 30, 10)


def test_links_at_the_ends():
    assert page_links(1, 25, 10) == ["next"]
    assert page_links(3, 25, 10) == ["prev"]
    assert page_links(1, 0, 10) == []
