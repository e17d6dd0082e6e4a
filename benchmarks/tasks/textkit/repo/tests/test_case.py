import pytest

from textkit.case import camel_case, snake_case, split_words, title_case


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fooBar", ["foo", "Bar"]),
        ("foo_bar-baz qux", ["foo", "bar", "baz", "qux"]),
        ("  padded  ", ["padded"]),
        ("utf8Decode", ["utf8", "Decode"]),
        ("", []),
    ],
)
def test_split_words(text, expected):
    assert split_words(text) == expected


def test_snake_case():
    assert snake_case("fooBar baz") == "foo_bar_baz"
    assert snake_case("Already_snake") == "already_snake"
    assert snake_case("version2Update") == "version2_update"


def test_snake_case_splits_acronyms():
    assert snake_case("parseHTTPHeader") == "parse_http_header"
    assert snake_case("HTTPServer") == "http_server"


def test_snake_case_keeps_trailing_acronym():
    assert snake_case("userID") == "user_id"
    assert snake_case("useHTTP") == "use_http"


def test_camel_case():
    assert camel_case("foo_bar baz") == "fooBarBaz"
    assert camel_case("foo_bar", upper_first=True) == "FooBar"
    assert camel_case("") == ""


def test_title_case_capitalizes_words():
    assert title_case("hello world") == "Hello World"
    assert title_case("  spaced   out  ") == "Spaced Out"


def test_title_case_keeps_inner_capitals():
    assert title_case("the McDonald farm") == "The McDonald Farm"
    assert title_case("NASA launches") == "NASA Launches"


def test_title_case_keeps_small_words_lowercase():
    assert title_case("the lord of the rings") == "The Lord of the Rings"
    assert title_case("war and peace") == "War and Peace"
