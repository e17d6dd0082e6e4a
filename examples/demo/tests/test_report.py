import pytest

from invoicekit.items import Invoice, LineItem
from invoicekit.report import parse_items, render

CSV = """\
sku,description,quantity,unit_price
A-1,Anvil,2,49.99
B-2,Box of bolts,10,0.35
"""


def test_parse_items():
    assert parse_items(CSV) == [
        LineItem("A-1", "Anvil", 2, 4999),
        LineItem("B-2", "Box of bolts", 10, 35),
    ]


def test_parse_items_skips_comments_blank_lines_and_spaces():
    text = "# exported 2024-05-01\n\nSKU, Description, Quantity, Unit_Price\n\n  A-1 , Anvil , 2 , $49.99\n# end\n"
    assert parse_items(text) == [LineItem("A-1", "Anvil", 2, 4999)]


def test_parse_items_empty():
    assert parse_items("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sku,name,qty,price\n", "expected header"),
        ("sku,description,quantity,unit_price\nA-1,Anvil,2\n", "line 2: expected 4 fields"),
        ("sku,description,quantity,unit_price\nA-1,Anvil,two,1.00\n", "line 2: bad quantity"),
    ],
)
def test_parse_items_errors_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_items(text)


def test_render():
    inv = Invoice("INV-7", items=parse_items(CSV))
    assert render(inv, tax_rate="0.08") == (
        "Invoice INV-7\n"
        "\n"
        "   2 x Anvil                              $99.98\n"
        "  10 x Box of bolts                        $3.50\n"
        "------------------------------------------------\n"
        "Subtotal                                 $103.48\n"
        "Tax                                        $8.28\n"
        "Total                                    $111.76\n"
    )
