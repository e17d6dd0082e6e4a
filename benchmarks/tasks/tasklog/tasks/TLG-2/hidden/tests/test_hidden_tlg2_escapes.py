from tasklog import store
from tasklog.model import Task


def test_backslashes_and_pipes_round_trip():
    tasks = [Task(1, "C:\\temp | D:\\backup\\"), Task(2, "a|b|c")]
    assert store.loads(store.dumps(tasks)) == tasks


def test_one_line_per_task():
    assert store.dumps([Task(1, "x | y")]).count("\n") == 1
