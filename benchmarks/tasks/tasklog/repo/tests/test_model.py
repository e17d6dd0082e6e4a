from datetime import date

import pytest

from tasklog.model import Task, find, next_id, parse_due


def test_task_defaults():
    task = Task(1, "Write report")
    assert task.due is None
    assert task.tags == ()
    assert task.priority == "normal"
    assert not task.done


def test_task_validation():
    with pytest.raises(ValueError, match="priority"):
        Task(1, "x", priority="urgent")
    with pytest.raises(ValueError, match="title"):
        Task(1, "   ")


def test_complete_returns_a_copy():
    task = Task(1, "x")
    assert task.complete().done
    assert not task.done


def test_has_tag():
    task = Task(1, "x", tags=("home", "errand"))
    assert task.has_tag("home")
    assert not task.has_tag("work")


def test_has_tag_ignores_case():
    task = Task(1, "x", tags=("work",))
    assert task.has_tag("Work")
    assert task.has_tag("WORK")


def test_next_id():
    assert next_id([]) == 1
    assert next_id([Task(3, "a"), Task(7, "b")]) == 8


def test_find():
    tasks = [Task(1, "a"), Task(2, "b")]
    assert find(tasks, 2).title == "b"


def test_parse_due_iso():
    assert parse_due("2024-05-01") == date(2024, 5, 1)


def test_parse_due_rejects_garbage():
    with pytest.raises(ValueError, match="not a due date"):
        parse_due("someday")


def test_parse_due_relative():
    today = date(2024, 5, 1)
    assert parse_due("today", today=today) == today
    assert parse_due("tomorrow", today=today) == date(2024, 5, 2)
    assert parse_due("+3d", today=today) == date(2024, 5, 4)
