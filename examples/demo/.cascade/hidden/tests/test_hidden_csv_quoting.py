from invoicekit.items import LineItem
from invoicekit.report import parse_items


def test_quoted_fields_keep_commas_and_quotes():
    text = (
        "# exported from a spreadsheet\n"
        "sku,description,quantity,unit_price\n"
        'W-1,"Widget, large",2,9.50\n'
        'R-12,"12"" steel ruler",1,"1,200.00"\n'
        "N-3, Nails ,100,0.02\n"
    )
    assert parse_items(text) == [
        LineItem("W-1", "Widget, large", 2, 950),
        LineItem("R-12", '12" steel ruler', 1, 120000),
        LineItem("N-3", "Nails", 100, 2),
    ]
