from decimal import Decimal

import pytest

from invoicekit.money import format_money, parse_money, round_half_up


def test_round_half_up_goes_away_from_zero():
    assert round_half_up(Decimal("2.5")) == 3
    assert round_half_up(Decimal("2.4999")) == 2
    assert round_half_up(Decimal("-2.5")) == -3


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12", 1200), ("$1,234.56", 123456), (" 0.5 ", 50), ("-3.99", -399), ("€2.005", 201)],
)
def test_parse_money(text, cents):
    assert parse_money(text) == cents


@pytest.mark.parametrize("text", ["", "twelve", "1.2.3", "NaN"])
def test_parse_money_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_money(text)


def test_format_money_positive_amounts():
    assert format_money(0) == "$0.00"
    assert format_money(5) == "$0.05"
    assert format_money(123456789) == "$1,234,567.89"


def test_format_money_other_currencies():
    assert format_money(1999, "EUR") == "€19.99"
    assert format_money(1999, "CHF") == "CHF 19.99"


def test_format_money_negative_amounts():
    assert format_money(-150) == "-$1.50"
    assert format_money(-5) == "-$0.05"
    assert format_money(-123456, "GBP") == "-£1,234.56"
