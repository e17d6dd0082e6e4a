"""Roman numerals from 1 to 3999."""

VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
TABLE = (
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
)


def to_roman(n):
    if not 0 < n < 4000:
        raise ValueError(f"out of range: {n}")
    out = []
    for value, letters in TABLE:
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)


def from_roman(text):
    total = 0
    for i, ch in enumerate(text):
        value = VALUES[ch]
        following = VALUES[text[i + 1]] if i + 1 < len(text) else 0
        if value > following:
            total -= value
        else:
            total += value
    return total


def is_valid(text):
    """True for a numeral in its one canonical spelling."""
    if not text or any(ch not in VALUES for ch in text):
        return False
    return to_roman(from_roman(text)) == text
