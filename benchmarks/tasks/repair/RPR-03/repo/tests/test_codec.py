from rle.codec import decode, encode, from_string, to_string


def test_encode_counts_each_run():
    assert encode("aaabcc") == [("a", 3), ("b", 1), ("c", 2)]


def test_round_trip():
    assert decode(encode("hello")) == "hello"


def test_encode_empty():
    assert encode("") == []


def test_decode():
    assert decode([("x", 2), ("y", 1)]) == "xxy"


def test_to_string():
    assert to_string([("a", 3), ("b", 1)]) == "a3b1"


def test_from_string():
    assert from_string("a3b12") == [("a", 3), ("b", 12)]
