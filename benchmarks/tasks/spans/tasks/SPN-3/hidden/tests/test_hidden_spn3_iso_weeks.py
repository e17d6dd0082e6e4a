from datetime import date

import pytest

from spans.parse import parse
from spans.range import DateRange


def test_week_53_exists_only_in_long_years():
    assert parse("2020-W53") == DateRange(date(2020, 12, 28), date(2021, 1, 4))
    with pytest.raises(ValueError, match="not a date range"):
        parse("2021-W53")


def test_span_of_weeks():
    assert parse("2021-W01..2021-W02") == DateRange(date(2021, 1, 4), date(2021, 1, 18))
