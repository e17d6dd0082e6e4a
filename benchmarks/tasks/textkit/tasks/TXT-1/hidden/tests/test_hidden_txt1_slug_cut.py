from textkit.slug import slugify


def test_cut_exactly_at_a_boundary_keeps_the_words():
    assert slugify("hello big world", max_length=9) == "hello-big"


def test_custom_separator_never_trails():
    assert slugify("alpha beta gamma", sep="_", max_length=12) == "alpha_beta"


def test_first_word_longer_than_max_is_cut():
    assert slugify("Incomprehensibilities abound", max_length=8) == "incompre"
