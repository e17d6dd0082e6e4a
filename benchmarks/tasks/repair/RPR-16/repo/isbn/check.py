"""ISBN-10 validation."""


def digits_of(text):
    """The ten digit values of an ISBN-10 ('X', only last, is 10), or None when it is malformed."""
    chars = text.replace("-", "").replace(" ", "")
    if len(chars) != 10:
        return None
    values = []
    for i, ch in enumerate(chars):
        if ch.isdigit():
            values.append(int(ch))
        elif ch in "Xx" and i == 9:
            values.append(10)
        else:
            return None
    return values


def checksum_ok(values):
    total = sum((9 - i) * v for i, v in enumerate(values))
    return total % 11 == 0


def validation_error(text):
    """Why `text` is not a valid ISBN-10, or "" when it is one."""
    values = digits_of(text)
    if values is None:
        return "malformed"
    if not checksum_ok(values):
        return "wrong check digit"
    return ""


def is_valid(text):
    return not validation_error(text)


def normalise(text):
    """The ISBN without separators, upper case."""
    return text.replace("-", "").replace(" ", "").upper()
