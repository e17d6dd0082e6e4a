from textkit.tokens import frequencies, sentences, word_count, words


def test_words_keep_apostrophes():
    assert words("Don't stop, it's 2 a.m.") == ["Don't", "stop", "it's", "2", "a", "m"]


def test_word_count(paragraph):
    assert word_count(paragraph) == 22


def test_sentences(paragraph):
    assert sentences(paragraph) == [
        "The quick brown fox jumps over the lazy dog.",
        "It was not amused!",
        "Would the dog ever forgive the fox?",
        "Nobody knows.",
    ]


def test_sentences_keep_closing_quotes():
    assert sentences('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


def test_sentences_lowercase_after_period_does_not_split():
    assert sentences("Use e.g. this one. Done.") == ["Use e.g. this one.", "Done."]


def test_sentences_empty():
    assert sentences("   ") == []


def test_sentences_do_not_split_after_titles():
    text = "Dr. Smith arrived late. Mrs. Jones had left. They met on St. Mary's Road."
    assert sentences(text) == [
        "Dr. Smith arrived late.",
        "Mrs. Jones had left.",
        "They met on St. Mary's Road.",
    ]


def test_frequencies():
    assert frequencies("b a B c a b") == {"b": 3, "a": 2, "c": 1}
