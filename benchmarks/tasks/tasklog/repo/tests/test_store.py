from datetime import date

import pytest

from tasklog import store
from tasklog.model import Task

TEXT = """\
[ ] 1 | Buy milk | 2024-05-03 | home,errand | normal
[x] 2 | File taxes | - | money | high
"""


def test_dumps_format():
    tasks = [
        Task(1, "Buy milk", date(2024, 5, 3), ("home", "errand")),
        Task(2, "File taxes", None, ("money",), "high", done=True),
    ]
    assert store.dumps(tasks) == TEXT


def test_loads_reads_the_documented_format():
    tasks = store.loads("# my tasks\n\n" + TEXT)
    assert [t.id for t in tasks] == [1, 2]
    assert tasks[0].tags == ("home", "errand")
    assert tasks[1].done and tasks[1].due is None


def test_loads_reports_the_line_number():
    with pytest.raises(ValueError, match="line 2"):
        store.loads("[ ] 1 | a | - |  | normal\n[?] 2 | b | - |  | normal\n")


def test_round_trip(task_file):
    tasks = store.load(task_file)
    assert store.loads(store.dumps(tasks)) == tasks
    assert len(tasks) == 4


def test_missing_file_is_empty(tmp_path):
    assert store.load(tmp_path / "nope") == []


def test_titles_with_pipes_survive_a_round_trip(tmp_path):
    tasks = [Task(1, "Compare plan A | plan B"), Task(2, "plain")]
    path = tmp_path / "tasks.txt"
    store.save(path, tasks)
    assert store.load(path) == tasks
