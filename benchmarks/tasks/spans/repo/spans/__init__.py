"""spans: half-open date ranges."""

from spans.business import add_business_days, business_days
from spans.fmt import humanize
from spans.merge import gaps, merge
from spans.parse import parse
from spans.range import DateRange

__all__ = [
    "DateRange",
    "add_business_days",
    "business_days",
    "gaps",
    "humanize",
    "merge",
    "parse",
]
