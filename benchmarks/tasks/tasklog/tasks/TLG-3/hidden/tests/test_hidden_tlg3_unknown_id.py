from tasklog.cli import main


def test_remove_unknown_id_is_an_error(task_file, capsys):
    before = task_file.read_text()
    assert main(["--file", str(task_file), "remove", "42"]) == 1
    assert "no task with id 42" in capsys.readouterr().err
    assert task_file.read_text() == before
