from datetime import date

from spans.fmt import humanize
from spans.range import DateRange


def span(first: date, last: date) -> DateRange:
    return DateRange.inclusive(first, last)


def test_one_day():
    assert humanize(span(date(2024, 1, 5), date(2024, 1, 5))) == "5 Jan 2024"


def test_same_month():
    assert humanize(span(date(2024, 1, 5), date(2024, 1, 9))) == "5–9 Jan 2024"


def test_across_months():
    assert humanize(span(date(2024, 1, 30), date(2024, 2, 2))) == "30 Jan – 2 Feb 2024"


def test_humanize_across_a_year_end():
    assert humanize(span(date(2023, 12, 30), date(2024, 1, 2))) == "30 Dec 2023 – 2 Jan 2024"
