import pytest

from textkit.wrap import fill, indent, wrap

TEXTS = [
    "abc de f",
    "The quick brown fox jumps over the lazy dog",
    "a bb ccc dddd eeeee ffffff",
    "x " * 30,
]


def test_wrap_simple():
    assert wrap("The quick brown fox", 10) == ["The quick", "brown fox"]


def test_wrap_empty():
    assert wrap("", 10) == []
    assert wrap("   \n ", 10) == []


def test_wrap_long_word_stands_alone():
    assert wrap("a supercalifragilistic word", 8) == ["a", "supercalifragilistic", "word"]


def test_wrap_fills_lines_exactly_to_width():
    assert wrap("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]
    assert wrap("one two three four", 13) == ["one two three", "four"]


@pytest.mark.parametrize("width", [3, 5, 7, 10, 16])
@pytest.mark.parametrize("text", TEXTS)
def test_lines_never_exceed_width(text, width):
    for line in wrap(text, width):
        assert len(line) <= width or " " not in line


@pytest.mark.parametrize("text", TEXTS)
def test_wrap_keeps_every_word(text):
    assert " ".join(wrap(text, 6)).split() == text.split()


def test_wrap_rejects_bad_width():
    with pytest.raises(ValueError):
        wrap("x", 0)


def test_fill_joins_lines():
    assert fill("The quick brown fox", 10) == "The quick\nbrown fox"


def test_indent():
    assert indent("a\n\nb", "  ") == "  a\n\n  b"
    assert indent("a\nb", "  ", first="- ") == "- a\n  b"
