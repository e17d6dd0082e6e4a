"""Choosing what a model sees: ranking (pure) and the token budget (on a real sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade.core.context import build_context, rank_files
from cascade.records import Issue, Task
from cascade.testing import DirectorySandbox, make_repo
from cascade.workspace.checkout import read_blobs

TEXTS = {
    "shop/money.py": "def format_money(cents):\n    return str(cents)\n",
    "shop/cart.py": "from shop.money import format_money\n\ndef total(items):\n    return 0\n",
    "shop/tax.py": "RATE = 0.2\n\ndef vat(amount):\n    return amount * RATE\n",
    "tests/test_cart.py": "from shop.cart import total\n\ndef test_total():\n    total([])\n",
    "README.md": "# shop\n",
}


def test_named_files_come_first_then_imports_then_identifiers() -> None:
    prose = "`total` in shop/cart.py ignores discounts; format_money is fine."
    ranked = rank_files(prose, TEXTS, tests=["tests/test_cart.py::test_total"])
    assert ranked[0] == ("shop/cart.py", "named in the issue")
    assert ranked[1] == ("tests/test_cart.py", "holds a target test")
    assert ("shop/money.py", "imported by shop/cart.py") in ranked
    assert "shop/tax.py" not in [path for path, _ in ranked]  # nothing links it to the issue


def test_dotted_module_names_and_tracebacks_count_as_named() -> None:
    ranked = rank_files("shop.tax rounds wrong", TEXTS)
    assert ranked[0] == ("shop/tax.py", "named in the issue")
    trace = 'File "/workspace/shop/money.py", line 2, in format_money'
    ranked = rank_files("it crashes", TEXTS, failures=[trace])
    assert ranked[0] == ("shop/money.py", "in a failing test's traceback")


def test_identifier_matches_rank_definitions_higher() -> None:
    ranked = dict(rank_files("vat is computed at the wrong RATE", TEXTS))
    assert ranked["shop/tax.py"].startswith("matches: RATE")


@pytest.mark.anyio
async def test_budget_and_hidden_files_on_a_real_sandbox(tmp_path: Path) -> None:
    files = {**TEXTS, "tests/test_secret.py": "def test_secret():\n    assert True\n"}
    repo = make_repo(tmp_path / "repo", files)
    issue = Issue(
        id="X-1",
        title="total ignores discounts",
        body="See shop/cart.py and tests/test_secret.py",
        hidden_tests=("tests/test_secret.py::test_secret",),
        hidden_files={"tests/test_secret.py": "def test_secret():\n    assert True\n"},
    )
    task = Task(issue=issue, repo=str(repo), base_commit="HEAD")
    box = DirectorySandbox(repo)
    wide = await build_context(box, task, {}, budget=10_000, count=len)
    narrow = await build_context(box, task, {}, budget=60, count=len)
    assert [f.path for f in wide.files][:2] == ["shop/cart.py", "shop/money.py"]
    assert all("test_secret" not in p for p in [*wide.listing, *(f.path for f in wide.files)])
    assert len(narrow.files) < len(wide.files) and narrow.tokens <= 60
    assert "shop/cart.py" in narrow.omitted or "shop/cart.py" in [f.path for f in narrow.files]


def test_read_blobs_reads_the_commit_not_the_working_tree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.py": "x = 1\n", "big.txt": "y" * 500, "sub/b.py": ""})
    (repo / "a.py").write_text("edited, not committed\n")
    blobs = read_blobs(repo, "HEAD", ["a.py", "big.txt", "sub/b.py", "gone.py"], 100)
    assert blobs == {"a.py": b"x = 1\n", "sub/b.py": b""}
