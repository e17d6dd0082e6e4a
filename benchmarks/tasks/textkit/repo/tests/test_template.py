import pytest

from textkit.template import TemplateError, fields, render, render_all


def test_render_values_and_defaults():
    assert render("Hi {name}!", {"name": "Ada"}) == "Hi Ada!"
    assert render("Hi {name|friend}!", {}) == "Hi friend!"
    assert render("{n} items", {"n": 3}) == "3 items"


def test_render_missing_field_names_it():
    with pytest.raises(TemplateError, match="'who'"):
        render("Hi {who}", {})


def test_render_leaves_non_fields_alone():
    assert render("a {1} b { c }", {}) == "a {1} b { c }"


def test_fields_in_order():
    assert fields("{b} {a} {b|x}") == ["b", "a"]


def test_render_all():
    assert render_all("{x}", [{"x": 1}, {"x": 2}]) == ["1", "2"]


def test_doubled_braces_are_literal():
    assert render("{{literal}} {name}", {"name": "x", "literal": "no"}) == "{literal} x"
    assert render("set {{}} is empty", {}) == "set {} is empty"
