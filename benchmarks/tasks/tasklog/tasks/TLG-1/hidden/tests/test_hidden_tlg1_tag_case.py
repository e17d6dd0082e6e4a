from tasklog.cli import main
from tasklog.model import Task


def test_stored_tag_with_capitals_matches_a_lowercase_query():
    assert Task(1, "x", tags=("Work",)).has_tag("work")


def test_listing_keeps_the_tag_as_written(tmp_path, capsys):
    path = tmp_path / "t.txt"
    assert main(["--file", str(path), "add", "Plan", "--tag", "ProjectX"]) == 0
    capsys.readouterr()
    assert main(["--file", str(path), "list", "--tag", "projectx"]) == 0
    assert "#ProjectX" in capsys.readouterr().out
