import pytest

from textkit.truncate import middle, truncate


def test_truncate_short_text_unchanged():
    assert truncate("hello", 10) == "hello"
    assert truncate("  hello   world ", 20) == "hello world"


def test_truncate_cuts_at_word_boundary():
    assert truncate("hello wonderful world", 16).startswith("hello")
    assert " " not in truncate("hello wonderful world", 16)[-2:]


def test_truncate_result_fits_width_including_ellipsis():
    assert truncate("hello wonderful world", 16) == "hello wonderful…"
    assert truncate("hello world foo", 11) == "hello…"
    assert truncate("hello world foo", 13, ellipsis="...") == "hello..."


def test_truncate_first_word_too_long():
    assert truncate("abcdefghijkl", 6) == "abcde…"


def test_truncate_rejects_tiny_width():
    with pytest.raises(ValueError):
        truncate("hello", 1)


def test_middle(paragraph):
    assert middle("abcdefghij", 7) == "abc…hij"
    assert middle("short", 10) == "short"
    assert len(middle(paragraph, 20)) == 20


def test_middle_rejects_tiny_width():
    with pytest.raises(ValueError):
        middle("abcdefghij", 2)
