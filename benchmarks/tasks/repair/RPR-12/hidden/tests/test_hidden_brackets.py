from syntaxcheck.brackets import first_unmatched, is_balanced


def test_agrees_with_first_unmatched_when_all_are_closed():
    for text in ("()", "(]", "([)]", "{[()]}", "}", "[]]", "a(b)c", "(()", ""):
        if first_unmatched(text) != -1:
            assert not is_balanced(text), text


def test_cases():
    assert is_balanced("")
    assert not is_balanced("([)]")
    assert not is_balanced("}")
    assert is_balanced("{[()()]}")
