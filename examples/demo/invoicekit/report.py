"""Plain-text import and export: line items from CSV in, a fixed-width invoice out."""

from __future__ import annotations

from decimal import Decimal

from .items import Invoice, LineItem
from .money import format_money, parse_money
from .pricing import totals

HEADER = ("sku", "description", "quantity", "unit_price")


def parse_items(text: str) -> list[LineItem]:
    """Read line items from CSV text whose first row is the header `HEADER`.

    Blank lines and lines starting with '#' are ignored; whitespace around fields is dropped.
    """
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        rows.append((lineno, [f.strip() for f in stripped.split(",")]))
    if not rows:
        return []
    (_, header), *body = rows
    if tuple(h.lower() for h in header) != HEADER:
        raise ValueError(f"expected header {','.join(HEADER)}, got {','.join(header)}")
    items = []
    for lineno, fields in body:
        if len(fields) != len(HEADER):
            raise ValueError(f"line {lineno}: expected {len(HEADER)} fields, got {len(fields)}")
        sku, description, quantity, price = fields
        try:
            qty = int(quantity)
        except ValueError:
            raise ValueError(f"line {lineno}: bad quantity {quantity!r}") from None
        items.append(LineItem(sku, description, qty, parse_money(price)))
    return items


def render(
    invoice: Invoice, discount_percent: Decimal | str | int = 0, tax_rate: Decimal | str | int = 0
) -> str:
    """A fixed-width text invoice, 48 columns wide."""
    t = totals(invoice, discount_percent, tax_rate)

    def money(cents: int) -> str:
        return format_money(cents, invoice.currency)

    lines = [f"Invoice {invoice.number}", ""]
    for item in invoice.items:
        lines.append(f"{item.quantity:>4} x {item.description:<28.28} {money(item.amount):>12}")
    lines.append("-" * 48)
    rows = [("Subtotal", t.subtotal)]
    if t.discount:
        rows.append((f"Discount {discount_percent}%", -t.discount))
    if t.tax:
        rows.append(("Tax", t.tax))
    rows.append(("Total", t.total))
    lines += [f"{label:<34}{format_money(cents):>14}" for label, cents in rows]
    return "\n".join(lines) + "\n"
