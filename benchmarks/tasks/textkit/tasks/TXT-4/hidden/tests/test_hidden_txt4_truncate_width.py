import pytest

from textkit.truncate import truncate

TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit"


@pytest.mark.parametrize("width", range(2, 30))
def test_never_longer_than_width(width):
    assert len(truncate(TEXT, width)) <= width


def test_multi_char_ellipsis_counts_fully():
    assert truncate("alpha beta gamma", 12, ellipsis=" [...]") == "alpha [...]"
