from datetime import date

from tasklog.model import Task
from tasklog.render import table


def test_table_columns_fit_the_longest_title():
    tasks = [Task(1, "Short", date(2024, 5, 1), ("a",)), Task(12, "A longer title")]
    assert table(tasks).split("\n") == [
        "[ ]  1  Short           2024-05-01  #a",
        "[ ] 12  A longer title",
    ]


def test_done_mark():
    assert table([Task(1, "x", done=True)]).startswith("[x] 1  x")


def test_long_titles_are_cut_to_keep_columns_aligned():
    tasks = [
        Task(1, "A title that is much too long to show in full", date(2024, 5, 1)),
        Task(2, "Short", date(2024, 5, 2)),
    ]
    lines = table(tasks, max_title=20).split("\n")
    assert lines[0] == "[ ] 1  A title that is muc…  2024-05-01"
    assert lines[1] == "[ ] 2  Short                 2024-05-02"
