"""Discounts, tax and totals. Rates are given as Decimals or strings ("0.2"), never floats."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .items import Invoice, LineItem
from .money import round_half_up


@dataclass(frozen=True)
class Totals:
    subtotal: int
    discount: int
    tax: int
    total: int


def percent_discount(amount: int, percent: Decimal | str | int) -> int:
    """The discount on `amount` cents at `percent` (e.g. 15 or "12.5"), rounded half up."""
    pct = Decimal(str(percent))
    if not 0 <= pct <= 100:
        raise ValueError(f"discount must be between 0 and 100 percent, got {percent}")
    return round_half_up(Decimal(amount) * pct / 100)


def tax_on(amount: int, rate: Decimal | str | int) -> int:
    """Tax on `amount` cents at `rate` (a fraction: "0.2" is 20%), rounded half up."""
    r = Decimal(str(rate))
    if not 0 <= r <= 1:
        raise ValueError(f"tax rate must be a fraction between 0 and 1, got {rate}")
    return round_half_up(Decimal(amount) * r)


def totals(
    invoice: Invoice, discount_percent: Decimal | str | int = 0, tax_rate: Decimal | str | int = 0
) -> Totals:
    """Discount applies to the subtotal; tax applies to what is left after the discount."""
    subtotal = invoice.subtotal
    discount = percent_discount(subtotal, discount_percent)
    tax = tax_on(subtotal - discount, tax_rate)
    return Totals(subtotal, discount, tax, subtotal - discount + tax)


BULK_QUANTITY = 10  # this many of one item, or more, earn the bulk discount
BULK_PERCENT = 5


def bulk_discount(item: LineItem) -> int:
    """The bulk discount on one line, in cents: BULK_PERCENT off a line of BULK_QUANTITY or more
    of one item, rounded half up; none on a credit line."""
    if item.quantity > BULK_QUANTITY and item.unit_price > 0:
        return percent_discount(item.amount, BULK_PERCENT)
    return 0
