from invoicekit.items import LineItem
from invoicekit.pricing import bulk_discount


def test_bulk_discount_on_a_large_line():
    assert bulk_discount(LineItem("B-2", "Bolt", 12, 1000)) == 600


def test_no_bulk_discount_on_a_small_line():
    assert bulk_discount(LineItem("B-2", "Bolt", 3, 1000)) == 0


def test_no_bulk_discount_on_a_credit_line():
    assert bulk_discount(LineItem("B-2", "Bolt (returned)", 40, -1000)) == 0


def test_bulk_discount_starts_at_the_threshold():
    assert bulk_discount(LineItem("B-2", "Bolt", 10, 1000)) == 500
