from syntaxcheck.brackets import first_unmatched, is_balanced, max_depth


def test_balanced_text():
    assert is_balanced("([]{})")
    assert is_balanced("f(x[1]) + {}")


def test_unclosed_opener_is_unbalanced():
    assert not is_balanced("((")


def test_mismatched_pair_is_unbalanced():
    assert not is_balanced("(]")


def test_closer_before_opener_is_unbalanced():
    assert not is_balanced(")(")


def test_max_depth():
    assert max_depth("(()[{}])") == 3
    assert max_depth("abc") == 0


def test_first_unmatched():
    assert first_unmatched("(a]") == 2
    assert first_unmatched("()") == -1
