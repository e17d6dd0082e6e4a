from textkit.case import camel_case, snake_case, split_words


def test_single_letter_word_before_a_capitalized_word():
    assert snake_case("getAValue") == "get_a_value"


def test_acronym_then_digits():
    assert split_words("XMLHttpRequest2") == ["XML", "Http", "Request2"]


def test_camel_case_of_acronym_identifier():
    assert camel_case("parseHTTPHeader") == "parseHttpHeader"
