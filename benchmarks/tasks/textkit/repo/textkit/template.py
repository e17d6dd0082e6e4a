"""Tiny `{name}` templates: `render("Hi {name|friend}!", {"name": "Ada"})`.

A field is `{name}` or `{name|default}`. A field without a value and without a default is an
error that names the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\|([^{}]*))?\}")


class TemplateError(ValueError):
    """A template that cannot be rendered with the values given."""


def render(template: str, values: Mapping[str, object]) -> str:
    """Replace every field of `template` with its value (`str()` of it) or its default."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in values:
            return str(values[name])
        if default is not None:
            return default
        raise TemplateError(f"no value for field {name!r} and no default")

    return _FIELD.sub(substitute, template)


def fields(template: str) -> list[str]:
    """The field names of `template`, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in _FIELD.finditer(template):
        seen.setdefault(match.group(1), None)
    return list(seen)


def render_all(template, rows):
    """`render` for each mapping in `rows` (kept untyped for old callers)."""
    return [render(template, row) for row in rows]
