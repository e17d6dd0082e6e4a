from isbn.check import is_valid


def test_valid_numbers():
    for text in ("0-306-40615-2", "0-8044-2957-X", "0-19-852663-6", "3-16-148410-X"):
        assert is_valid(text), text


def test_wrong_check_digit_is_rejected():
    for text in ("0-306-40615-3", "0-8044-2957-1", "0-19-852663-0", "3-16-148410-0"):
        assert not is_valid(text), text


def test_transposed_digits_are_rejected():
    assert not is_valid("0-306-46015-2")
