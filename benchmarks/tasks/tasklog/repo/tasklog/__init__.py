"""tasklog: a to-do list in a plain text file."""

__version__ = "0.5.0"
