from rle.codec import decode, encode, from_string, to_string


def test_round_trips():
    for text in ("", "a", "ab", "aab", "abbb", "zzzzzzzzzzzz", "mississippi"):
        assert decode(encode(text)) == text
        assert decode(from_string(to_string(encode(text)))) == text


def test_counts():
    assert encode("mississippi")[:3] == [("m", 1), ("i", 1), ("s", 2)]
    assert encode("x" * 12) == [("x", 12)]
