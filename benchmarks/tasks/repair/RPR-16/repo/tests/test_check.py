from isbn.check import digits_of, is_valid, normalise, validation_error


def test_digits_of():
    assert digits_of("0-8044-2957-x") == [0, 8, 0, 4, 4, 2, 9, 5, 7, 10]
    assert digits_of("12345") is None


def test_wrong_length_is_invalid():
    assert not is_valid("123")


def test_x_only_at_the_end():
    assert not is_valid("0-306-4061X-2")


def test_malformed_numbers_say_so():
    assert validation_error("0-306") == "malformed"


def test_normalise():
    assert normalise("0-8044 2957-x") == "080442957X"


def test_valid_isbn_is_accepted():
    assert is_valid("0-306-40615-2")
