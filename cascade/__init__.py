"""cascade: turn an issue into a verified patch, cheapest model first, with proof of every try."""

__version__ = "0.1.0"
