from textkit.tokens import sentences


def test_custom_abbreviations():
    text = "See Fig. 3 for details. It is clear."
    assert sentences(text, abbreviations={"fig"}) == ["See Fig. 3 for details.", "It is clear."]


def test_abbreviations_are_case_insensitive():
    assert sentences("DR. Who came. He left.") == ["DR. Who came.", "He left."]
