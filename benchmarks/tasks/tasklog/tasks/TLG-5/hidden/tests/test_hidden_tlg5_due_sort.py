from tasklog.cli import main


def ids(out):
    return [line.split()[2] for line in out.splitlines()]


def test_equal_due_dates_keep_id_order(tmp_path, capsys):
    path = str(tmp_path / "t.txt")
    for title, due in [("a", "2024-06-01"), ("b", None), ("c", "2024-05-01"), ("d", "2024-06-01")]:
        main(["--file", path, "add", title, *(["--due", due] if due else [])])
    capsys.readouterr()
    assert main(["--file", path, "list", "--sort", "due"]) == 0
    assert ids(capsys.readouterr().out) == ["3", "1", "4", "2"]


def test_only_undated_tasks(tmp_path, capsys):
    path = str(tmp_path / "t.txt")
    for title in ["a", "b"]:
        main(["--file", path, "add", title])
    capsys.readouterr()
    assert main(["--file", path, "list", "--sort", "due"]) == 0
    assert ids(capsys.readouterr().out) == ["1", "2"]
