from prose.wrap import indent, justify, longest_line, wrap


def test_wrap_keeps_the_last_line():
    assert wrap("aa bb cc", 5) == ["aa bb", "cc"]


def test_wrap_a_single_word():
    assert wrap("hello", 10) == ["hello"]


def test_indent_skips_blank_lines():
    assert indent(["a", "", "b"], "> ") == ["> a", "", "> b"]


def test_longest_line():
    assert longest_line(["ab", "abcd", ""]) == 4
    assert longest_line([]) == 0


def test_justify():
    assert justify("a b c", 7) == "a  b  c"
    assert justify("ab cd", 8) == "ab    cd"
    assert justify("word", 9) == "word"
