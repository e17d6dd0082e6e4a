from titles.case import acronym, sentence_case, swap_case_words, title_case


def test_title_case_capitalises_words():
    assert title_case("the hobbit") == "The Hobbit"


def test_small_words_stay_small():
    assert title_case("lord of the rings") == "Lord of the Rings"


def test_shouted_small_words_are_lower_cased():
    assert title_case("WAR AND PEACE") == "War and Peace"


def test_sentence_case():
    assert sentence_case("hELLO wORLD") == "Hello world"


def test_swap_case_words():
    assert swap_case_words("Ab  cD") == "aB Cd"


def test_acronym():
    assert acronym("portable network graphics") == "PNG"
    assert acronym("the lord of the rings") == "LR"
