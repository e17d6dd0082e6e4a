"""Line items and the invoice that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LineItem:
    sku: str
    description: str
    quantity: int
    unit_price: int  # cents; negative for a credit line

    def __post_init__(self) -> None:
        if not self.sku:
            raise ValueError("a line item needs a SKU")
        if self.quantity <= 0:
            raise ValueError(f"{self.sku}: quantity must be positive, got {self.quantity}")

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


@dataclass
class Invoice:
    number: str
    currency: str = "USD"
    items: list[LineItem] = field(default_factory=list)

    def add(self, item: LineItem) -> None:
        """Add a line; the same SKU at the same unit price merges into the existing line."""
        for i, existing in enumerate(self.items):
            if existing.sku == item.sku and existing.unit_price == item.unit_price:
                merged = existing.quantity + item.quantity
                self.items[i] = LineItem(
                    existing.sku, existing.description, merged, existing.unit_price
                )
                return
        self.items.append(item)

    @property
    def subtotal(self) -> int:
        return sum(item.amount for item in self.items)
