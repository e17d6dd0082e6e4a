"""textkit: small, dependable text utilities."""

from textkit.case import camel_case, snake_case, title_case
from textkit.slug import slugify
from textkit.template import render
from textkit.tokens import sentences, words
from textkit.truncate import truncate
from textkit.wrap import wrap

__all__ = [
    "camel_case",
    "render",
    "sentences",
    "slugify",
    "snake_case",
    "title_case",
    "truncate",
    "words",
    "wrap",
]
