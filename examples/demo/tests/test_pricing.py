import pytest

from invoicekit.items import Invoice, LineItem
from invoicekit.pricing import Totals, percent_discount, tax_on, totals


def test_percent_discount_rounds_half_up():
    assert percent_discount(1000, 15) == 150
    assert percent_discount(999, "12.5") == 125  # 124.875 -> 125
    assert percent_discount(1, 50) == 1  # 0.5 -> 1


def test_percent_discount_range():
    with pytest.raises(ValueError):
        percent_discount(1000, 101)


def test_tax_on_rounds_half_up():
    assert tax_on(1999, "0.2") == 400  # 399.8
    assert tax_on(1025, "0.1") == 103  # 102.5


def test_tax_rate_is_a_fraction():
    with pytest.raises(ValueError):
        tax_on(1000, 20)


def test_totals_discount_then_tax():
    inv = Invoice("INV-7", items=[LineItem("A-1", "Anvil", 2, 4999), LineItem("B-2", "Bolt", 10, 35)])
    assert totals(inv, discount_percent=10, tax_rate="0.08") == Totals(
        subtotal=10348, discount=1035, tax=745, total=10058
    )


def test_instalments_sum_to_the_total():
    from invoicekit.pricing import instalments

    assert instalments(10_000, 4) == [2500, 2500, 2500, 2500]
    parts = instalments(100_001, 7)
    assert len(parts) == 7
    assert sum(parts) == 100_001
    assert max(parts) - min(parts) <= 1


def test_instalments_put_extra_cents_first():
    from invoicekit.pricing import instalments

    assert instalments(100, 3) == [34, 33, 33]
    assert instalments(1000, 6) == [167, 167, 167, 167, 166, 166]


def test_instalments_reject_bad_input():
    from invoicekit.pricing import instalments

    with pytest.raises(ValueError):
        instalments(100, 0)
    with pytest.raises(ValueError):
        instalments(-100, 2)
