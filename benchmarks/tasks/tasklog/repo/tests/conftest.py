from datetime import date
from pathlib import Path

import pytest

from tasklog import store
from tasklog.model import Task

SAMPLE = [
    Task(1, "Buy milk", date(2024, 5, 3), ("home", "errand")),
    Task(2, "File taxes", date(2024, 4, 30), ("money",), "high"),
    Task(3, "Call mum", None, ("family",)),
    Task(4, "Fix bike", date(2024, 5, 1), ("home",), "low", done=True),
]


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.txt"
    store.save(path, SAMPLE)
    return path
