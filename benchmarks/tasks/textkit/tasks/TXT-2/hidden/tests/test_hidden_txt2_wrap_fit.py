from textkit.wrap import fill, wrap


def test_exact_fit_on_every_line():
    assert wrap("ab cd ef gh", 5) == ["ab cd", "ef gh"]


def test_fill_uses_the_whole_width():
    assert fill("one two six ten", 7) == "one two\nsix ten"
