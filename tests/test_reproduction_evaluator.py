"""The reproduction judge, run for real: a small money library with two bugs in a git repository,
a LocalSandbox, the pytest evaluator's baseline, and each candidate test written into the
workspace, judged by real pytest runs, and reset."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from cascade.errors import InfraError
from cascade.protocols import Evaluator
from cascade.records import Issue, Patch, Scope, Task, Verdict
from cascade.testing import git as _git
from cascade.testing import make_repo
from cascade.wiring.registry import load
from cascade.workspace.apply import canonical_patch
from evaluators.failure_kinds import RepoFacts
from evaluators.pytest_gate import PytestEvaluator
from evaluators.reproduction import ReproductionConfig, ReproductionEvaluator
from sandboxes.local_sandbox import LocalSandbox

FMT = """\
SYMBOL = "$"


def format_money(cents):
    sign = "-" if cents < 0 else ""
    return f"{SYMBOL}{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def parse_money(text):
    if not text.startswith("$"):
        raise ValueError(f"not an amount: {text!r}")
    whole, _, cents = text[1:].partition(".")
    return int(whole) * 100 + int(cents or 0)


class MoneyError(Exception):
    pass


def checked(text):
    try:
        return parse_money(text)
    except ValueError as exc:
        raise MoneyError(f"bad amount {text!r}") from exc


def split(cents, parts):
    assert parts > 0, "parts must be positive"
    return [cents // parts] * parts


class Wallet:
    def __init__(self):
        self.cents = 0

    def add(self, cents):
        self.cents += cents
"""
EXISTING = """\
from money.fmt import format_money, parse_money


def test_positive():
    assert format_money(150) == "$1.50"


def test_parse():
    assert parse_money("$2.05") == 205
"""
CONFTEST = "import pytest\n\n\n@pytest.fixture\ndef amount():\n    return 150\n"
HIDDEN_PATH = "tests/test_hidden_secret_sauce.py"
HIDDEN_ID = f"{HIDDEN_PATH}::test_secretly_negative"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module scope, for the module-scoped sandbox below


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = {
        "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
        "money/__init__.py": "",
        "money/fmt.py": FMT,
        "tests/conftest.py": CONFTEST,
        "tests/test_fmt.py": EXISTING,
    }
    return make_repo(tmp_path_factory.mktemp("repro") / "repo", files)


@pytest.fixture(scope="module")
async def sandbox(repo: Path) -> AsyncIterator[LocalSandbox]:
    box = await LocalSandbox.open(repo, _git(repo, "rev-parse", "HEAD").strip())
    try:
        yield box
    finally:
        await box.close()


@pytest.fixture(scope="module")
async def base(sandbox: LocalSandbox, repo: Path) -> dict[str, Any]:
    return await PytestEvaluator().baseline(sandbox, _task(repo))


def _task(repo: Path, **issue: Any) -> Task:
    issue.setdefault("title", "negative amounts are formatted as $-1.50")
    found = Issue(id="M-1", **issue)
    return Task(issue=found, repo=str(repo), base_commit="HEAD")


async def _judge(
    box: LocalSandbox,
    task: Task,
    base: Mapping[str, Any],
    files: Mapping[str, str | None],
    config: ReproductionConfig | None = None,
) -> Verdict:
    """Write the candidate, judge it, and reset the workspace as the engine does."""
    try:
        await box.write_files({p: None if t is None else t.encode() for p, t in files.items()})
        patch: Patch = await canonical_patch(box)
        return await ReproductionEvaluator(config).evaluate(box, task, patch, base)
    finally:
        await box.reset()


def _rules(verdict: Verdict) -> set[str]:
    return {f.rule for f in verdict.findings}


GOOD = """\
import pytest

from money.fmt import format_money


@pytest.mark.parametrize("cents,text", [(-150, "-$1.50"), (-5, "-$0.05")], ids=["dollar", "cents"])
def test_negative_amounts(cents, text):
    assert format_money(cents) == text


def test_positive_still_fine():
    assert format_money(5) == "$0.05"
"""


@pytest.mark.anyio
async def test_assertion_reproduction_is_accepted(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_negative.py": GOOD})
    assert verdict.passed, verdict.feedback
    assert verdict.evaluator == "reproduction" and verdict.feedback == ""
    # Parametrised ids as pytest names them; the passing sanity check is not a proving test.
    assert verdict.tests == {
        "tests/test_negative.py::test_negative_amounts[dollar]": (
            "assertion: assert '$-1.50' == '-$1.50'"
        ),
        "tests/test_negative.py::test_negative_amounts[cents]": (
            "assertion: assert '$-0.05' == '-$0.05'"
        ),
    }
    assert "test_negative_amounts[dollar]" in verdict.artifacts["junit.xml"]
    assert "$ pytest (full suite)" in verdict.artifacts["pytest.log"]
    assert verdict.findings == () and verdict.duration_s > 0


@pytest.mark.anyio
async def test_exception_from_repository_code_is_accepted(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    test = "from money.fmt import parse_money\n\n\ndef test_parse_negative():\n"
    test += '    assert parse_money("-$1.50") == -150\n'
    # The issue's scope is the fix's: a reproduction may write tests even where it denies them.
    task = _task(repo, scope=Scope(allow=("money/**",), deny=("tests/**",)))
    verdict = await _judge(sandbox, task, base, {"tests/test_parse_neg.py": test})
    assert verdict.passed, verdict.feedback
    assert verdict.tests == {
        "tests/test_parse_neg.py::test_parse_negative": (
            "exception: ValueError: not an amount: '-$1.50'"
        )
    }


@pytest.mark.anyio
async def test_feature_request_missing_names_are_accepted(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    # A module-level import of a name the issue asks for: a collection error, named by its file.
    feature = _task(
        repo,
        title="Amounts in words, and a wallet balance",
        body="Add `money.fmt.to_words(cents)` and a `Wallet.balance()` method.",
    )
    module_level = "from money.fmt import to_words\n\n\ndef test_words():\n"
    module_level += '    assert to_words(150) == "one dollar fifty"\n'
    verdict = await _judge(sandbox, feature, base, {"tests/test_words.py": module_level})
    assert verdict.passed, verdict.feedback
    assert list(verdict.tests) == ["tests/test_words.py"]
    assert verdict.tests["tests/test_words.py"].startswith(
        "missing_symbol: ImportError: cannot import name 'to_words' from 'money.fmt'"
    )
    # At call time: a missing module attribute, and a missing method of the repository's class.
    call_time = (
        "import money.fmt\nfrom money.fmt import Wallet\n\n\n"
        "def test_module_attribute():\n    assert money.fmt.to_words(150)\n\n\n"
        "def test_method():\n    assert Wallet().balance() == 0\n"
    )
    verdict = await _judge(sandbox, feature, base, {"tests/test_wallet_api.py": call_time})
    assert verdict.passed, verdict.feedback
    assert verdict.tests == {
        "tests/test_wallet_api.py::test_method": (
            "missing_symbol: AttributeError: 'Wallet' object has no attribute 'balance'"
        ),
        "tests/test_wallet_api.py::test_module_attribute": (
            "missing_symbol: AttributeError: module 'money.fmt' has no attribute 'to_words'"
        ),
    }


@pytest.mark.anyio
async def test_a_missing_name_the_issue_does_not_ask_for_is_the_tests_mistake(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    # A bug report asks for no new name: a test importing one from the wrong module fails at
    # base, but it would "prove" a fix that merely adds the name (found by the task suite).
    wrong = "from money.fmt import to_words\n\n\ndef test_negative():\n"
    wrong += '    assert to_words(-150) == "minus one dollar fifty"\n'
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_words.py": wrong})
    assert not verdict.passed and not verdict.tests
    assert [f.rule for f in verdict.findings] == ["unasked_symbol"]
    assert "the issue does not ask for that name" in verdict.feedback


ACCEPTED_KINDS = """\
import pytest

from money.fmt import Wallet, checked, format_money, split


def test_did_not_raise():
    with pytest.raises(ValueError):
        format_money(-1)


def test_chained_from_repo():
    assert checked("-$1") == -100


def test_assert_in_repo():
    assert split(100, 0) == []


def test_missing_keyword():
    assert format_money(-150, currency="EUR") == "-€1.50"


def test_missing_init_keyword():
    assert Wallet(owner="ann").cents == 0


def test_missing_module_of_the_package():
    import money.words

    assert money.words.spell(150)
"""
REJECTED_KINDS = """\
import json

from money.fmt import format_money


def test_attribute_of_a_plain_value():
    assert format_money(1).cents == 1


def test_positional_mistake():
    assert format_money(1, 2, 3)


def test_library_error_in_test():
    assert json.loads("{")


def test_wrong_name_from_a_library():
    from json import not_there

    assert not_there


def test_wrong_import_path():
    import fmt

    assert fmt
"""


@pytest.mark.anyio
async def test_kinds_read_from_real_tracebacks(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    asks = _task(
        repo,
        title="Currencies and owners",
        body="`format_money` should take a `currency`, `Wallet` an `owner`, and amounts in "
        "words belong in a new `money.words` module.",
    )
    verdict = await _judge(sandbox, asks, base, {"tests/test_kinds.py": ACCEPTED_KINDS})
    assert verdict.passed, verdict.feedback
    kinds = {n.split("::")[1]: line for n, line in verdict.tests.items()}
    # pytest.raises is an assertion (pytest 9 names the class bare, older ones as `<class ...>`)
    assert kinds.pop("test_did_not_raise").startswith("assertion: Failed: DID NOT RAISE ")
    assert kinds == {
        "test_chained_from_repo": "exception: money.fmt.MoneyError: bad amount '-$1'",
        "test_assert_in_repo": "exception: AssertionError: parts must be positive",
        "test_missing_keyword": (
            "missing_symbol: TypeError: format_money() got an unexpected keyword argument "
            "'currency'"
        ),
        "test_missing_init_keyword": (
            "missing_symbol: TypeError: Wallet.__init__() got an unexpected keyword argument "
            "'owner'"
        ),
        "test_missing_module_of_the_package": (
            "missing_symbol: ModuleNotFoundError: No module named 'money.words'"
        ),
    }
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_kinds.py": REJECTED_KINDS})
    assert not verdict.passed
    rules = {f.message.split("::")[1].split(":")[0]: f.rule for f in verdict.findings}
    assert rules == dict.fromkeys(
        [
            "test_attribute_of_a_plain_value",
            "test_positional_mistake",
            "test_library_error_in_test",
            "test_wrong_name_from_a_library",
            "test_wrong_import_path",
        ],
        "error_in_test",
    )
    assert "'str' object has no attribute 'cents' (at tests/test_kinds.py:7)" in verdict.feedback


@pytest.mark.anyio
async def test_hidden_tests_stay_out_of_the_judgement(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    # A hidden module among the baseline's outcomes (as when it replaced a public one): ignored,
    # never run (its file is not copied in), never named.
    task = _task(
        repo,
        hidden_tests=(HIDDEN_ID,),
        hidden_files={HIDDEN_PATH: "def test_secretly_negative():\n    assert False\n"},
    )
    with_hidden = {**base, "outcomes": {**base["outcomes"], HIDDEN_ID: "passed"}}
    verdict = await _judge(sandbox, task, with_hidden, {"tests/test_negative.py": GOOD})
    assert verdict.passed, verdict.feedback
    assert "secret" not in verdict.model_dump_json()


@pytest.mark.anyio
async def test_a_test_that_passes_at_base_is_rejected(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    test = "from money.fmt import format_money\n\n\ndef test_fine():\n"
    test += '    assert format_money(250) == "$2.50"\n'
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_fine.py": test})
    assert not verdict.passed and verdict.tests == {}
    assert _rules(verdict) == {"passes_at_base"}
    assert "passes at the base commit, so it does not reproduce the issue" in verdict.feedback
    assert "tests/test_fine.py::test_fine" in verdict.feedback


WRONG_REASONS = {
    "syntax": (
        "def test_broken(:\n    pass\n",
        "syntax_error",
        "SyntaxError",
    ),
    "name": (
        "from money.fmt import format_money\n\n\ndef test_neg():\n"
        '    assert format_money(minus_cents) == "-$1.50"\n',
        "name_error_in_test",
        "NameError: name 'minus_cents' is not defined — an error in the test itself, not the "
        "issue; import what you use",
    ),
    "fixture": (
        'def test_client(client):\n    assert client.get("/") == 200\n',
        "missing_fixture",
        "fixture 'client' not found",
    ),
    "module_nowhere": (
        "import moneyformatter\n\n\ndef test_neg():\n"
        '    assert moneyformatter.format(-150) == "-$1.50"\n',
        "missing_module",
        "No module named 'moneyformatter'",
    ),
    "module_level_call": (
        "from money.fmt import parse_money\n\nAMOUNT = parse_money('-$1.50')\n\n\n"
        "def test_neg():\n    assert AMOUNT == -150\n",
        "collection_error",
        "tests/test_candidate.py cannot be collected: ValueError: not an amount: '-$1.50' — the "
        "module fails while pytest imports it",
    ),
    "raised_in_test": (
        "from money.fmt import parse_money\n\n\ndef test_neg():\n"
        '    assert parse_money("$1.50").cents == 150\n',
        "error_in_test",
        "AttributeError: 'int' object has no attribute 'cents' (at tests/test_candidate.py:5)",
    ),
    "explicit_fail": (
        "import pytest\n\n\ndef test_neg():\n    pytest.fail('negative amounts are wrong')\n",
        "explicit_fail",
        "pytest.fail() says nothing about the code's behaviour",
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(WRONG_REASONS))
async def test_a_test_failing_for_the_wrong_reason_is_rejected(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any], case: str
) -> None:
    source, rule, said = WRONG_REASONS[case]
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_candidate.py": source})
    assert not verdict.passed and verdict.tests == {}
    assert _rules(verdict) == {rule}, verdict.feedback
    assert said in verdict.feedback
    assert verdict.feedback.startswith("Your test was not accepted as a reproduction")
    finding = verdict.findings[0]
    assert finding.path == "tests/test_candidate.py"
    assert "/cascade-local-" not in verdict.feedback  # workspace paths are made relative


@pytest.mark.anyio
async def test_a_wrong_reason_beside_a_good_test_still_rejects(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    source = GOOD + "\n\ndef test_typo():\n    assert format_mony(-1)\n"
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_negative.py": source})
    assert not verdict.passed
    assert _rules(verdict) == {"name_error_in_test"}
    assert "tests/test_negative.py::test_typo fails with NameError" in verdict.feedback


@pytest.mark.anyio
async def test_changing_source_or_scaffolding_is_refused_before_running(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    fixed = FMT.replace('f"{SYMBOL}{sign}', 'f"{sign}{SYMBOL}')
    files = {"money/fmt.py": fixed, "tests/test_negative.py": GOOD}
    verdict = await _judge(sandbox, _task(repo), base, files)
    assert not verdict.passed and _rules(verdict) == {"not_tests_only"}
    assert "it changes money/fmt.py: a reproduction may only add or change tests" in (
        verdict.feedback
    )
    assert "Write only a test" in verdict.feedback
    assert verdict.artifacts == {}  # nothing ran
    # conftest.py is scaffolding: protected even though it lives under tests/.
    conftest = CONFTEST + "\n\n@pytest.fixture\ndef client():\n    return None\n"
    files = {"tests/conftest.py": conftest, "tests/test_negative.py": GOOD}
    verdict = await _judge(sandbox, _task(repo), base, files)
    assert not verdict.passed and _rules(verdict) == {"protected_path"}
    assert "tests/conftest.py: is test scaffolding" in verdict.feedback


@pytest.mark.anyio
async def test_deleting_an_existing_test_is_refused(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    files = {"tests/test_fmt.py": None, "tests/test_negative.py": GOOD}
    verdict = await _judge(sandbox, _task(repo), base, files)
    assert not verdict.passed and _rules(verdict) == {"test_deleted"}
    assert "tests/test_fmt.py: deletes a test file" in verdict.feedback
    # The issue's allow-test-changes label is for the fix, not for a reproduction.
    task = _task(repo, labels=("allow-test-changes",))
    shorter = EXISTING.split("\n\n\ndef test_parse", maxsplit=1)[0] + "\n"
    files = {"tests/test_fmt.py": shorter, "tests/test_negative.py": GOOD}
    verdict = await _judge(sandbox, task, base, files)
    assert not verdict.passed and _rules(verdict) == {"test_weakened"}
    assert "test_parse" in verdict.feedback


@pytest.mark.anyio
async def test_no_new_test_is_rejected(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    helper = "def make_amount():\n    return -150\n"
    verdict = await _judge(sandbox, _task(repo), base, {"tests/helpers.py": helper})
    assert not verdict.passed and _rules(verdict) == {"no_tests"}
    assert "pytest collected no new test from tests/helpers.py" in verdict.feedback


@pytest.mark.anyio
async def test_a_flaky_test_is_rejected(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any], tmp_path: Path
) -> None:
    # Fails on the first run (and leaves a marker outside the workspace), passes on the second.
    marker = tmp_path / "ran-once"
    test = (
        "from pathlib import Path\n\n\ndef test_first_time_only():\n"
        f"    marker = Path({str(marker)!r})\n"
        "    first = not marker.exists()\n    marker.touch()\n    assert not first\n"
    )
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_flaky.py": test})
    assert not verdict.passed and _rules(verdict) == {"flaky"}
    assert "tests/test_flaky.py::test_first_time_only: first failed with assert not True" in (
        verdict.feedback
    )
    assert "then passed again" in verdict.feedback
    assert "fail the same way every time" in verdict.feedback


@pytest.mark.anyio
async def test_a_test_that_breaks_another_test_is_rejected(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    # Importing it changes a module global that an existing test relies on; its own test does
    # fail for the issue's reason, and alone it looks fine.
    test = (
        "import money.fmt\nfrom money.fmt import format_money\n\n"
        'money.fmt.SYMBOL = "€"\n\n\ndef test_negative_euros():\n'
        '    assert format_money(-150) == "-€1.50"\n'
    )
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_euro.py": test})
    assert not verdict.passed and _rules(verdict) == {"breaks_other_tests"}
    assert [f.message for f in verdict.findings] == [
        "tests/test_fmt.py::test_positive: AssertionError: assert '€1.50' == '$1.50'"
    ]
    assert "tests that passed at the base commit fail" in verdict.feedback
    assert "monkeypatch" in verdict.feedback


@pytest.mark.anyio
async def test_a_run_that_breaks_or_hangs_is_rejected(
    sandbox: LocalSandbox, repo: Path, base: dict[str, Any]
) -> None:
    leaves = 'import pytest\n\n\ndef test_neg():\n    pytest.exit("bye", returncode=3)\n'
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_exit.py": leaves})
    assert not verdict.passed and _rules(verdict) == {"pytest_internal"}
    assert "pytest could not run your test: pytest exit 3 (internal error)" in verdict.feedback
    hangs = "import time\n\n\ndef test_neg():\n    time.sleep(60)\n"
    config = ReproductionConfig(timeout=2)
    verdict = await _judge(sandbox, _task(repo), base, {"tests/test_hang.py": hangs}, config)
    assert not verdict.passed and _rules(verdict) == {"timeout"}
    assert (
        "timed out after 2 s" in verdict.feedback and "If the issue is a hang" in verdict.feedback
    )


@pytest.mark.anyio
async def test_needs_the_pytest_baseline(sandbox: LocalSandbox, repo: Path) -> None:
    patch = await canonical_patch(sandbox)  # nothing changed
    with pytest.raises(InfraError, match="outcomes"):
        await ReproductionEvaluator().evaluate(sandbox, _task(repo), patch, {})


def test_contract_config_and_entry_point() -> None:
    evaluator = ReproductionEvaluator()
    assert isinstance(evaluator, Evaluator)
    assert load("evaluator", "reproduction") is ReproductionEvaluator
    assert ReproductionEvaluator.config_model is ReproductionConfig
    assert evaluator.baseline_key(_task(Path("/x"))) == ""
    config = ReproductionConfig.model_validate({"args": ["-x"], "timeout": 30, "reruns": 2})
    assert config.args == ("-x",) and config.reruns == 2
    with pytest.raises(ValueError):
        ReproductionConfig.model_validate({"colour": "red"})


def test_repo_facts_tell_whose_code_a_frame_is() -> None:
    facts = RepoFacts(
        root="/work",
        files=frozenset({"src/money/fmt.py", "src/money/__init__.py", "tests/test_fmt.py"}),
    )
    assert facts.where("src/money/fmt.py") == "repo"
    assert facts.where("/work/src/money/fmt.py") == "repo"
    assert facts.where("tests/test_fmt.py") == "test"
    assert facts.where("tests/conftest.py") == "test"
    assert facts.where("/usr/lib/python3.11/json/decoder.py") == "outside"
    assert facts.where("<frozen importlib._bootstrap>") == "outside"
    # an installed copy of a repository module is the repository's code
    assert facts.where("/usr/lib/python3/site-packages/money/fmt.py") == "repo"
    assert facts.where("/usr/lib/python3/site-packages/_pytest/python.py") == "outside"
    assert facts.module("money.fmt") == "repo" and facts.module("money") == "repo"
    assert facts.module("tests.test_fmt") == "test" and facts.module("moneyformatter") is None
