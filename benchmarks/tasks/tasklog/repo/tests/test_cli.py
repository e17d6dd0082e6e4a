from tasklog import store
from tasklog.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add(tmp_path, capsys):
    path = tmp_path / "t.txt"
    code, out, _ = run(capsys, "--file", str(path), "add", "Write report", "--tag", "work")
    assert code == 0
    assert out == "added 1: Write report\n"
    assert store.load(path)[0].tags == ("work",)


def test_add_rejects_bad_due_date(tmp_path, capsys):
    code, _, err = run(capsys, "--file", str(tmp_path / "t"), "add", "x", "--due", "soon")
    assert code == 1
    assert "not a due date" in err


def test_list_default_order_hides_done(task_file, capsys):
    code, out, _ = run(capsys, "--file", str(task_file), "list")
    assert code == 0
    assert [line.split()[2] for line in out.splitlines()] == ["1", "2", "3"]


def test_list_all(task_file, capsys):
    _, out, _ = run(capsys, "--file", str(task_file), "list", "--all")
    assert len(out.splitlines()) == 4


def test_list_by_tag(task_file, capsys):
    _, out, _ = run(capsys, "--file", str(task_file), "list", "--tag", "home")
    assert [line.split()[2] for line in out.splitlines()] == ["1"]


def test_list_by_tag_ignores_case(task_file, capsys):
    _, out, _ = run(capsys, "--file", str(task_file), "list", "--tag", "HOME")
    assert [line.split()[2] for line in out.splitlines()] == ["1"]


def test_list_empty(tmp_path, capsys):
    _, out, _ = run(capsys, "--file", str(tmp_path / "none"), "list")
    assert out == "no tasks\n"


def test_list_sorted_by_due_puts_undated_last(task_file, capsys):
    code, out, _ = run(capsys, "--file", str(task_file), "list", "--sort", "due")
    assert code == 0
    assert [line.split()[2] for line in out.splitlines()] == ["2", "1", "3"]


def test_done(task_file, capsys):
    code, out, _ = run(capsys, "--file", str(task_file), "done", "1")
    assert code == 0
    assert out == "done 1: Buy milk\n"
    assert store.load(task_file)[0].done


def test_done_unknown_id_is_an_error(task_file, capsys):
    before = task_file.read_text()
    code, _, err = run(capsys, "--file", str(task_file), "done", "99")
    assert code == 1
    assert "no task with id 99" in err
    assert task_file.read_text() == before


def test_remove(task_file, capsys):
    code, _, _ = run(capsys, "--file", str(task_file), "remove", "2")
    assert code == 0
    assert [t.id for t in store.load(task_file)] == [1, 3, 4]


def test_list_json(task_file, capsys):
    import json

    code, out, _ = run(capsys, "--file", str(task_file), "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert [item["id"] for item in data] == [1, 2, 3]
    assert data[0] == {
        "id": 1,
        "title": "Buy milk",
        "due": "2024-05-03",
        "tags": ["home", "errand"],
        "priority": "normal",
        "done": False,
    }
