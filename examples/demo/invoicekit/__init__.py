"""invoicekit: small, exact invoice arithmetic. Money is always integer cents."""

from .items import Invoice, LineItem
from .money import format_money, parse_money, round_half_up
from .pricing import Totals, percent_discount, tax_on, totals

__all__ = [
    "Invoice",
    "LineItem",
    "Totals",
    "format_money",
    "parse_money",
    "percent_discount",
    "round_half_up",
    "tax_on",
    "totals",
]
