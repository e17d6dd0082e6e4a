from textkit.case import title_case


def test_small_word_at_the_end_is_capitalized():
    assert title_case("what it is made of") == "What It Is Made Of"


def test_small_word_at_the_start_is_capitalized():
    assert title_case("a tale of two cities") == "A Tale of Two Cities"


def test_small_words_are_matched_case_insensitively():
    assert title_case("THE END OF THE ROAD") == "THE END of the ROAD"
