from textkit.template import fields, render


def test_fields_skip_escaped_braces():
    assert fields("{{a}} {b} {{c}}") == ["b"]


def test_escaped_braces_around_a_field():
    assert render("{{ {name} }}", {"name": "x"}) == "{ x }"
