import pytest

from invoicekit.items import Invoice, LineItem


def test_line_amount():
    assert LineItem("A-1", "Anvil", 3, 1250).amount == 3750


@pytest.mark.parametrize("quantity", [0, -2])
def test_line_rejects_non_positive_quantity(quantity):
    with pytest.raises(ValueError, match="quantity"):
        LineItem("A-1", "Anvil", quantity, 1250)


def test_add_merges_same_sku_and_price():
    inv = Invoice("INV-1")
    inv.add(LineItem("A-1", "Anvil", 1, 1250))
    inv.add(LineItem("B-2", "Bucket", 2, 300))
    inv.add(LineItem("A-1", "Anvil", 2, 1250))
    assert [(i.sku, i.quantity) for i in inv.items] == [("A-1", 3), ("B-2", 2)]
    assert inv.subtotal == 3 * 1250 + 2 * 300


def test_add_keeps_same_sku_at_another_price_apart():
    inv = Invoice("INV-2")
    inv.add(LineItem("A-1", "Anvil", 1, 1250))
    inv.add(LineItem("A-1", "Anvil (refund)", 1, -1250))
    assert len(inv.items) == 2
    assert inv.subtotal == 0
