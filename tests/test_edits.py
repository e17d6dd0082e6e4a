"""The edit format (parse, resolve) and applying edits to real git workspaces."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cascade.core.edits import check_path, parse_edits, resolve
from cascade.errors import EditError, SandboxError
from cascade.records import Edit
from cascade.testing import DirectorySandbox, git, make_repo
from cascade.workspace.apply import PATCH_FILE, apply_edits, canonical_patch

APP = "def greet(name):\n    return 'hello ' + name\n\n\ndef main():\n    print(greet('you'))\n"


def block(path: str, search: str, replace: str, marks: int = 7) -> str:
    return f"{path}\n{'<' * marks} SEARCH\n{search}{'=' * marks}\n{replace}{'>' * marks} REPLACE\n"


def sr(path: str, search: str, replace: str) -> Edit:
    return Edit(path=path, kind="search_replace", search=search, replace=replace)


# --- parse_edits: search/replace blocks ---------------------------------------------------------


def test_parses_a_block_with_prose_around_it() -> None:
    text = "I'll fix it.\n\n" + block("src/app.py", "a = 1\n", "a = 2\n") + "\nDone."
    assert parse_edits(text) == [sr("src/app.py", "a = 1\n", "a = 2\n")]


def test_several_blocks_keep_their_order_and_files() -> None:
    text = "\n".join(
        [
            block("src/a.py", "x\n", "y\n"),
            "Then the other file:",
            block("src/b.py", "p\n", "q\n"),
            block("src/a.py", "z\n", ""),
        ]
    )
    assert [(e.path, e.search, e.replace) for e in parse_edits(text)] == [
        ("src/a.py", "x\n", "y\n"),
        ("src/b.py", "p\n", "q\n"),
        ("src/a.py", "z\n", ""),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "src/app.py\n```python\n" + block("", "a\n", "b\n").lstrip("\n") + "```\n",
        "```python\nsrc/app.py\n" + block("", "a\n", "b\n").lstrip("\n") + "```\n",
        "File: `src/app.py`\n\n```\n" + block("", "a\n", "b\n").lstrip("\n") + "```\n",
        "**src/app.py**\n" + block("", "a\n", "b\n").lstrip("\n"),
        "```path=src/app.py\n" + block("", "a\n", "b\n").lstrip("\n") + "```\n",
    ],
    ids=["path-before-fence", "path-inside-fence", "file-prefix", "bold", "info-path"],
)
def test_finds_the_path_of_a_fenced_block(text: str) -> None:
    assert parse_edits(text) == [sr("src/app.py", "a\n", "b\n")]


def test_consecutive_blocks_in_one_fence_share_the_path() -> None:
    body = block("", "a\n", "b\n").lstrip("\n") + block("", "c\n", "d\n").lstrip("\n")
    edits = parse_edits(f"src/app.py\n```python\n{body}```\n")
    assert edits == [sr("src/app.py", "a\n", "b\n"), sr("src/app.py", "c\n", "d\n")]


def test_an_empty_search_creates_a_file() -> None:
    (edit,) = parse_edits(block("src/new.py", "", "X = 1\n"))
    assert edit == sr("src/new.py", "", "X = 1\n")


@pytest.mark.parametrize("marks", [5, 9])
def test_tolerates_miscounted_markers(marks: int) -> None:
    assert parse_edits(block("a.py", "x\n", "y\n", marks)) == [sr("a.py", "x\n", "y\n")]


def test_crlf_answers_are_normalised() -> None:
    text = block("a.py", "x\n", "y\n").replace("\n", "\r\n")
    assert parse_edits(text) == [sr("a.py", "x\n", "y\n")]


# --- parse_edits: unified diffs and whole files -------------------------------------------------

UDIFF = """Here is the patch:

```diff
diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,2 +1,2 @@
 def greet(name):
-    return 'hello ' + name
+    return 'hi ' + name
--- /dev/null
+++ b/src/new.py
@@ -0,0 +1 @@
+X = 1
```
"""


def test_parses_a_fenced_unified_diff_per_file() -> None:
    edits = parse_edits(UDIFF)
    assert [(e.kind, e.path) for e in edits] == [("udiff", "src/app.py"), ("udiff", "src/new.py")]
    assert edits[0].diff == (
        "--- a/src/app.py\n+++ b/src/app.py\n@@ -1,2 +1,2 @@\n def greet(name):\n"
        "-    return 'hello ' + name\n+    return 'hi ' + name\n"
    )
    assert edits[1].diff == "--- /dev/null\n+++ b/src/new.py\n@@ -0,0 +1 @@\n+X = 1\n"


def test_a_diff_without_line_numbers_is_refused() -> None:
    text = "```diff\n--- a/x.py\n+++ b/x.py\n@@ ... @@\n-a\n+b\n```\n"
    with pytest.raises(EditError, match="no line numbers"):
        parse_edits(text)


def test_a_hunk_of_added_lines_only_is_refused() -> None:
    text = "```diff\n--- a/x.py\n+++ b/x.py\n@@ -3,0 +4,1 @@\n+b\n```\n"
    with pytest.raises(EditError, match="only added lines"):
        parse_edits(text)


def test_parses_whole_file_blocks() -> None:
    text = (
        "New module:\n\n`src/pkg/mod.py`\n```python\nX = 1\n```\n\n"
        "src/README.md\n````markdown\n# T\n```sh\nls\n```\n````\n\n"
        "```path=setup.cfg\n[x]\n```\n\n"
        "An example, not an edit:\n```python\nprint(1)\n```\n"
    )
    assert parse_edits(text) == [
        Edit(path="src/pkg/mod.py", kind="whole_file", replace="X = 1\n"),
        Edit(path="src/README.md", kind="whole_file", replace="# T\n```sh\nls\n```\n"),
        Edit(path="setup.cfg", kind="whole_file", replace="[x]\n"),
    ]


# --- parse_edits: refusals ------------------------------------------------------------------------


def test_an_answer_without_edits_explains_the_format() -> None:
    with pytest.raises(EditError) as caught:
        parse_edits("Sure! Change greet to say hi.\n```python\nreturn 'hi'\n```\n")
    assert "<<<<<<< SEARCH" in caught.value.feedback
    assert ">>>>>>> REPLACE" in caught.value.feedback
    assert len(caught.value.feedback) < 1500


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a.py\n<<<<<<< SEARCH\nx\n>>>>>>> REPLACE\n", "no `=======`"),
        ("a.py\n<<<<<<< SEARCH\nx\n=======\ny\n", "does not end with"),
        ("Change this:\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n", "file path"),
        ("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n", "file path"),
    ],
    ids=["no-divider", "no-replace", "prose-not-path", "no-path"],
)
def test_a_malformed_block_is_refused(text: str, problem: str) -> None:
    with pytest.raises(EditError, match="Block 1 is malformed") as caught:
        parse_edits(text)
    assert problem in caught.value.feedback


@pytest.mark.parametrize("path", ["../etc/passwd", "src/../../x.py", "/etc/passwd", ".git/config"])
def test_paths_outside_the_workspace_are_refused(path: str) -> None:
    with pytest.raises(EditError, match=r"relative|`\.\.`"):
        parse_edits(block(path, "", "x\n"))


def test_check_path_accepts_ordinary_paths() -> None:
    assert check_path("src/.github/x..y.py") == "src/.github/x..y.py"


# --- resolve ----------------------------------------------------------------------------------


def test_an_exact_match_is_replaced() -> None:
    edit = sr("src/app.py", "    return 'hello ' + name\n", "    return 'hi ' + name\n")
    assert resolve(APP, edit) == APP.replace("'hello '", "'hi '")


def test_matches_are_whole_lines_not_substrings() -> None:
    text = "max = 1\nx = 1\n"
    assert resolve(text, sr("a.py", "x = 1\n", "x = 2\n")) == "max = 1\nx = 2\n"


def test_an_ambiguous_block_names_every_place() -> None:
    text = "a\nx = 1\nb\nx = 1\n"
    with pytest.raises(EditError, match=r"matches 2 places in a\.py \(lines 2, 4\)"):
        resolve(text, sr("a.py", "x = 1\n", "x = 2\n"))


def test_an_unmatched_block_shows_the_closest_lines() -> None:
    edit = sr("src/app.py", "def greet(name):\n    return 'hello' + name\n", "")
    with pytest.raises(EditError) as caught:
        resolve(APP, edit)
    feedback = caught.value.feedback
    assert "not found in src/app.py" in feedback
    assert "    1 | def greet(name):" in feedback
    assert "    2 |     return 'hello ' + name" in feedback


def test_unmatched_feedback_stays_short_on_a_big_file() -> None:
    original = "".join(f"r{i} = compute('{i}', flag=True)  # {'x' * 200}\n" for i in range(3000))
    with pytest.raises(EditError) as caught:
        resolve(original, sr("big.py", "r1500 = compute('1500', flag=False)\n", ""))
    assert "1501 |" in caught.value.feedback
    assert len(caught.value.feedback) < 1500


def test_trailing_whitespace_and_a_missing_final_newline_are_tolerated() -> None:
    assert resolve("a = 1   \nb = 2", sr("a.py", "a = 1\nb = 2\n", "c = 3\n")) == "c = 3\n"


def test_a_uniform_indentation_shift_reindents_the_replacement() -> None:
    original = "class A:\n    def f(self):\n        if x:\n            return 1\n"
    search = "def f(self):\n    if x:\n        return 1\n"
    replace = "def f(self):\n    if x:\n\n        return 2\n"
    expected = "class A:\n    def f(self):\n        if x:\n\n            return 2\n"
    assert resolve(original, sr("a.py", search, replace)) == expected


def test_an_over_indented_search_is_shifted_back() -> None:
    edit = sr("a.py", "        x = 1\n        y = 2\n", "        x = 3\n")
    assert resolve("x = 1\ny = 2\n", edit) == "x = 3\n"


def test_a_non_uniform_indentation_difference_is_not_fuzzed() -> None:
    with pytest.raises(EditError, match="not found"):
        resolve("if a:\n    b\n", sr("a.py", "if a:\nb\n", "c\n"))


def test_creating_files() -> None:
    assert resolve(None, sr("n.py", "", "X = 1\n")) == "X = 1\n"
    assert resolve("", sr("n.py", "", "X = 1\n")) == "X = 1\n"
    with pytest.raises(EditError, match="already exists"):
        resolve("Y = 2\n", sr("n.py", "", "X = 1\n"))
    with pytest.raises(EditError, match="does not exist"):
        resolve(None, sr("n.py", "Y = 2\n", "X = 1\n"))


def test_a_crlf_file_stays_crlf() -> None:
    assert resolve("a\r\nb\r\n", sr("a.txt", "b\n", "c\n")) == "a\r\nc\r\n"


def test_whole_file_gets_a_final_newline() -> None:
    assert resolve("old\n", Edit(path="a.py", kind="whole_file", replace="new")) == "new\n"


# --- apply_edits and canonical_patch, on a real git repository ----------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"src/app.py": APP, "README.md": "# app\n"})


@pytest.mark.anyio
async def test_apply_returns_the_canonical_patch(repo: Path) -> None:
    box = DirectorySandbox(repo)
    text = block("src/app.py", "    return 'hello ' + name\n", "    return 'hi ' + name\n")
    text += block("src/util.py", "", "X = 1\n")
    patch = await apply_edits(box, parse_edits(text))
    assert patch.files == ("src/app.py", "src/util.py")
    assert (patch.added, patch.removed) == (2, 1)
    assert "+    return 'hi ' + name\n" in patch.diff
    assert "new file mode 100644" in patch.diff
    assert patch.sha256 == hashlib.sha256(patch.diff.encode()).hexdigest()
    assert (repo / "src" / "util.py").read_text() == "X = 1\n"


@pytest.mark.anyio
async def test_several_edits_to_one_file_apply_in_order(repo: Path) -> None:
    edits = [sr("src/app.py", "def greet(name):\n", "def greet(who):\n")]
    edits.append(sr("src/app.py", "    return 'hello ' + name\n", "    return 'hi ' + who\n"))
    patch = await apply_edits(DirectorySandbox(repo), edits)
    assert patch.files == ("src/app.py",)
    assert (repo / "src" / "app.py").read_text().startswith("def greet(who):\n    return 'hi '")


@pytest.mark.anyio
async def test_a_failing_block_leaves_the_workspace_clean(repo: Path) -> None:
    edits = [sr("README.md", "# app\n", "# App\n"), sr("src/app.py", "nothing like it\n", "")]
    edits.append(sr("src/new.py", "", "X = 1\n"))
    with pytest.raises(EditError, match=r"^Block 2 \(src/app\.py\): SEARCH was not found"):
        await apply_edits(DirectorySandbox(repo), edits)
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.anyio
async def test_apply_a_unified_diff(repo: Path) -> None:
    patch = await apply_edits(DirectorySandbox(repo), parse_edits(UDIFF))
    assert patch.files == ("src/app.py", "src/new.py")
    assert (repo / "src" / "new.py").read_text() == "X = 1\n"
    assert not (repo / PATCH_FILE).exists()


@pytest.mark.anyio
async def test_a_diff_that_does_not_apply_names_the_closest_lines(repo: Path) -> None:
    diff = "--- a/src/app.py\n+++ b/src/app.py\n@@ -1,1 +1,1 @@\n-def greet(nme):\n+def yes():\n"
    edits = [
        sr("README.md", "# app\n", "# App\n"),
        Edit(path="src/app.py", kind="udiff", diff=diff),
    ]
    with pytest.raises(EditError) as caught:
        await apply_edits(DirectorySandbox(repo), edits)
    said = caught.value.feedback
    assert said.startswith("Block 2 (src/app.py): Hunk 1: its context and - lines are not in")
    assert "1 | def greet(name):" in said  # the line it most likely meant, numbered
    assert git(repo, "status", "--porcelain") == ""
    assert not (repo / PATCH_FILE).exists()


@pytest.mark.anyio
async def test_a_diff_whose_lines_are_there_reports_git(repo: Path) -> None:
    # A diff that creates a file that exists: nothing is missing, git says what is wrong.
    diff = "--- /dev/null\n+++ b/src/app.py\n@@ -0,0 +1,1 @@\n+X = 1\n"
    with pytest.raises(EditError, match=r"Block 1 \(src/app\.py\): the diff does not apply"):
        await apply_edits(
            DirectorySandbox(repo), [Edit(path="src/app.py", kind="udiff", diff=diff)]
        )


@pytest.mark.anyio
async def test_a_rename_lists_both_paths(repo: Path) -> None:
    (repo / "src" / "app.py").rename(repo / "src" / "main.py")
    patch = await canonical_patch(DirectorySandbox(repo))
    assert patch.files == ("src/app.py", "src/main.py")


@pytest.mark.anyio
async def test_canonical_patch_of_a_clean_workspace_is_empty(repo: Path) -> None:
    patch = await canonical_patch(DirectorySandbox(repo))
    assert (patch.diff, patch.files, patch.added, patch.removed) == ("", (), 0, 0)


@pytest.mark.anyio
async def test_canonical_patch_outside_git_is_a_sandbox_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="git add -A failed"):
        await canonical_patch(DirectorySandbox(tmp_path))


# --- through LocalSandbox -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_local_sandbox_applies_and_cleans_up(repo: Path) -> None:
    from sandboxes.local_sandbox import LocalSandbox

    box = await LocalSandbox.open(repo, git(repo, "rev-parse", "HEAD").strip())
    try:
        good = block("src/app.py", "def main():\n", "def main() -> None:\n")
        patch = await box.apply(parse_edits(good))
        assert patch.files == ("src/app.py",)
        assert "+def main() -> None:\n" in patch.diff
        await box.reset()
        bad = good + block("README.md", "# nope\n", "# App\n")
        with pytest.raises(EditError, match=r"Block 2 \(README\.md\)"):
            await box.apply(parse_edits(bad))
        status = await box.exec(["git", "status", "--porcelain"], timeout=30)
        assert (status.exit_code, status.stdout) == (0, "")
    finally:
        await box.close()
