import json

from tasklog.cli import main


def test_json_respects_the_filters(task_file, capsys):
    assert main(["--file", str(task_file), "list", "--json", "--tag", "money"]) == 0
    assert [item["id"] for item in json.loads(capsys.readouterr().out)] == [2]


def test_json_with_no_tasks_is_an_empty_list(tmp_path, capsys):
    assert main(["--file", str(tmp_path / "none"), "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_json_undated_task_has_null_due(task_file, capsys):
    main(["--file", str(task_file), "list", "--json"])
    assert json.loads(capsys.readouterr().out)[2]["due"] is None
