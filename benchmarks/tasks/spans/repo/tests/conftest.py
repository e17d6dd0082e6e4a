from datetime import date

import pytest

from spans.range import DateRange


@pytest.fixture
def january() -> DateRange:
    return DateRange(date(2024, 1, 1), date(2024, 2, 1))
