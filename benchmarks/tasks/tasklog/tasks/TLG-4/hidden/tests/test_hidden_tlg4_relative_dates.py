from datetime import date

from tasklog.model import parse_due

TODAY = date(2024, 5, 1)


def test_weeks_from_today():
    assert parse_due("+2w", today=TODAY) == date(2024, 5, 15)
    assert parse_due("+0d", today=TODAY) == TODAY


def test_words_ignore_case_and_spaces():
    assert parse_due(" Tomorrow ", today=TODAY) == date(2024, 5, 2)
