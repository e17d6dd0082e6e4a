import pytest

from textkit import slug
from textkit.slug import ascii_fold, slugify, unique_slug


def test_ascii_fold_strips_accents():
    assert ascii_fold("Crème brûlée") == "Creme brulee"
    assert ascii_fold("naïve café") == "naive cafe"


def test_slugify_basic():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("  many   spaces  ") == "many-spaces"
    assert slugify("Crème Brûlée 2024") == "creme-brulee-2024"


def test_slugify_custom_separator():
    assert slugify("Hello World", sep="_") == "hello_world"


def test_slugify_empty():
    assert slugify("") == ""
    assert slugify("!!!") == ""


def test_slugify_short_text_is_not_cut():
    assert slugify("short text", max_length=50) == "short-text"


def test_slugify_max_length_cuts_at_word_boundary():
    assert slugify("The quick brown fox", max_length=12) == "the-quick"
    assert slugify("one two three", max_length=10) == "one-two"


@pytest.mark.parametrize(("sep", "max_length"), [("", None), ("-", 0), ("-", -3)])
def test_slugify_rejects_bad_arguments(sep, max_length):
    with pytest.raises(ValueError):
        slugify("x", sep=sep, max_length=max_length)


def test_unique_slug_counts_up():
    taken = {"report", "report-2"}
    assert unique_slug("Report", taken) == "report-3"
    assert unique_slug("Other", taken) == "other"
    assert unique_slug("!!!", set()) == "item"


def test_module_exports():
    assert slug.slugify is slugify
