from datetime import date

from tasklog.model import Task
from tasklog.render import table


def test_title_of_exactly_max_length_is_not_cut():
    task = Task(1, "x" * 20, date(2024, 5, 1))
    assert table([task], max_title=20) == "[ ] 1  " + "x" * 20 + "  2024-05-01"


def test_default_width_is_40():
    assert table([Task(1, "y" * 50)]) == "[ ] 1  " + "y" * 39 + "…"
