from prose.wrap import wrap


def test_nothing_to_wrap():
    assert wrap("", 10) == []
    assert wrap("   ", 10) == []


def test_every_word_is_kept_in_order():
    text = "the quick brown fox jumps over the lazy dog"
    for width in range(3, 45):
        lines = wrap(text, width)
        assert " ".join(lines).split() == text.split()
        assert all(len(line) <= width or " " not in line for line in lines)


def test_exact_fit_and_long_word():
    assert wrap("abc def", 7) == ["abc def"]
    assert wrap("a verylongword b", 4) == ["a", "verylongword", "b"]
