"""Money as integer cents: parsing, rounding and formatting."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def round_half_up(value: Decimal) -> int:
    """Round an amount of cents to a whole cent; halves go away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_money(text: str) -> int:
    """Parse a human-written amount such as "1,234.5", "$12" or "-3.99" into cents."""
    cleaned = text.strip()
    for symbol in SYMBOLS.values():
        cleaned = cleaned.replace(symbol, "")
    cleaned = cleaned.replace(",", "").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not a money amount: {text!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a money amount: {text!r}")
    return round_half_up(amount * 100)


def format_money(cents: int, currency: str = "USD") -> str:
    """Render cents for people: 123456 -> "$1,234.56"."""
    symbol = SYMBOLS.get(currency, f"{currency} ")
    whole, frac = divmod(cents, 100)
    return f"{symbol}{whole:,}.{frac:02d}"
