"""Rung zero's parts with no sandbox: the ladder passes over a search rung that cannot run (and
why), a repair rung costs nothing and needs no key, what a prompt shows of the localisation, and
the search/replace edit a candidate becomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from pydantic import ValidationError

from cascade.config import CascadeConfig, RungConfig
from cascade.core.context import build_context
from cascade.core.edits import parse_edits
from cascade.core.ladder import Plan, Step, Stop, Tried, next_step
from cascade.core.localise import Localisation, SuspectFunction, SuspectLine
from cascade.core.localised import excerpt, suspects
from cascade.core.prices import rung_price
from cascade.core.prompt import build_messages
from cascade.core.routing import TaskFacts
from cascade.core.search import cannot_search
from cascade.models.preflight import rung_problem
from cascade.models.recording import as_replay
from cascade.records import Issue, Task
from cascade.repair.mutate import mutants
from cascade.repair.search import mutant_lines
from cascade.testing import git, make_repo

REPAIR = RungConfig(name="repair", model="repair/mutate")
CHEAP = RungConfig(name="cheap", model="openai/gpt-4o-mini")
SOURCE = (
    "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n"
    "        return lo\n    return x\n"
)
TWICE = (
    "def f(a, b):\n    t = a + b\n    return t\n\n\ndef g(a, b):\n    t = a + b\n    return t * 2\n"
)


def line(n: int, ochiai: float, rank: int, path: str = "calc.py") -> SuspectLine:
    return SuspectLine(
        path=path, line=n, ochiai=ochiai, dstar=1.0, ef=1, ep=1, nf=0, np=1, rank=rank, tied=1
    )


LOC = Localisation(
    statements=(line(5, 0.9, 1), line(4, 0.7, 2), line(2, 0.5, 3)),
    functions=(
        SuspectFunction(
            path="calc.py",
            name="clamp",
            first=1,
            last=6,
            line=5,
            ochiai=0.9,
            dstar=1.0,
            rank=1,
            tied=1,
        ),
    ),
    failing=1,
    passing=2,
    suspects=3,
)


def test_a_search_rung_that_cannot_run_is_passed_over_with_the_reason() -> None:
    why = cannot_search((), None, "not measured")
    step = next_step(Plan((REPAIR, CHEAP), unsearchable=why), TaskFacts(), [])
    assert isinstance(step, Step) and step.rung.name == "cheap"
    assert "passed over 'repair' (a search rung needs a visible proving test" in step.reason
    alone = next_step(Plan((REPAIR,), unsearchable=why), TaskFacts(), [])
    assert isinstance(alone, Stop) and alone.status == "exhausted"
    assert "needs a visible proving test" in alone.reason
    # with a proving test and a localisation it runs, and climbs once it fails
    can = Plan((REPAIR, CHEAP), unsearchable=cannot_search(("t::x",), LOC, ""))
    first = next_step(can, TaskFacts(), [])
    assert isinstance(first, Step) and first.rung.name == "repair"
    after = next_step(can, TaskFacts(), [Tried("repair", "empty_patch")])
    assert isinstance(after, Step) and after.rung.name == "cheap"


@pytest.mark.parametrize(
    ("tests", "loc", "said"),
    [
        ((), LOC, "needs a visible proving test"),
        (("t::x",), None, "needs the fault localisation, which this run has not: timed out"),
        (("t::x",), Localisation(), "found no suspicious statement"),
        (("t::x",), LOC, ""),
    ],
)
def test_why_a_search_cannot_run(tests: tuple[str, ...], loc: Any, said: str) -> None:
    why = cannot_search(tests, loc, "timed out")
    assert (said in why) if said else why == ""


def test_a_repair_rung_is_free_needs_no_key_and_names_a_known_search() -> None:
    price = rung_price(REPAIR)
    assert (price.input_cost_per_token, price.output_cost_per_token, price.known) == (0, 0, True)
    assert rung_problem(REPAIR) is None
    with pytest.raises(ValidationError, match="unknown repair model 'repair/genetic'"):
        RungConfig(name="r", model="repair/genetic")


def test_a_search_rung_replays_as_itself_and_never_reviews() -> None:
    assert as_replay(REPAIR, "tape.jsonl") == REPAIR
    assert as_replay(CHEAP, "tape.jsonl").model == "replay/cheap"
    flow = {"name": "careful", "match": {"labels": ["x"]}, "review": "model"}
    for review in ({"review_rung": "repair"}, {"ladder": {"rungs": ["repair"]}}):
        with pytest.raises(ValidationError, match="'repair' is a search rung"):
            CascadeConfig.model_validate(
                {"ladder": [REPAIR.model_dump(), CHEAP.model_dump()],
                 "workflows": [{**flow, **review}]}
            )  # fmt: skip
    ladder = [CHEAP.model_dump(), REPAIR.model_dump()]  # the top rung reviews by default
    with pytest.raises(ValidationError, match="'repair' is a search rung"):
        CascadeConfig.model_validate({"ladder": ladder, "workflows": [flow]})


def test_the_excerpt_numbers_lines_and_marks_the_most_suspicious() -> None:
    shown = excerpt(SOURCE, 1, 6, {5}, 5)
    assert shown.splitlines()[4] == ">>5 |         return lo"
    assert shown.splitlines()[0] == "  1 | def clamp(x, lo, hi):"
    [suspect] = suspects(LOC, {"calc.py": SOURCE}, show=5)
    assert suspect.label == "calc.py::clamp" and ">>5 |" in suspect.excerpt
    assert ">>4 |" not in suspect.excerpt  # below the function's best score
    assert suspects(LOC, {}, show=5) == ()  # a file the context cannot read is not shown


def test_the_prompt_leads_with_the_localisation(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"calc.py": SOURCE, "other.py": "x = 1\n"})
    commit = git(repo, "rev-parse", "HEAD").strip()
    task = Task(
        issue=Issue(id="C-1", title="clamp is wrong above hi", body="other.py other"),
        repo=str(repo),
        base_commit=commit,
    )

    async def build() -> Any:
        return await build_context(
            cast(Any, None), task, {}, budget=5000, count=len, paths=["other.py", "calc.py"],
            localisation=LOC, show=3,
        )  # fmt: skip

    context = anyio.run(build)
    assert context.files[0].path == "calc.py"
    assert context.files[0].why == "fault localisation: clamp ranks 1"
    text = build_messages(task, context, {})[1].content
    assert text.index("## Where the failing tests point") < text.index("## Relevant files")
    assert ">>5 |         return lo" in text


def test_a_candidate_becomes_a_search_replace_edit_that_matches_once() -> None:
    """The changed line occurs twice in the file (`t = a + b`), so the SEARCH block widens
    until it is unique; the edit applies to exactly the mutated place."""
    mutant = next(m for m in mutants("calc.py", TWICE, [7]) if m.operator == "arith_op")
    old, new = mutant_lines(mutant, TWICE)
    assert TWICE.count("\n".join(old)) == 1
    assert old == ["    t = a + b", "    return t * 2"]
    assert new == ["    t = a - b", "    return t * 2"]
    text = "\n".join(["why", "", "calc.py", "<<<<<<< SEARCH", *old, "=======", *new,
                      ">>>>>>> REPLACE", ""])  # fmt: skip
    [edit] = parse_edits(text)
    assert TWICE.replace(edit.search, edit.replace, 1) == mutant.source


def test_a_batch_keeps_a_search_rung_searching() -> None:
    """`cascade replay` puts each model behind its call limiter; a search rung is left as it is
    (a wrapper would hide its search and turn the rung into a provider fault)."""
    from anyio import CapacityLimiter

    from cascade.config import RepairConfig
    from cascade.core.search import Searcher
    from cascade.repair.search import MutationRepair
    from cascade.replay.limits import LimitedModel, limited_models

    repair = MutationRepair(REPAIR, RepairConfig())

    async def build() -> dict[str, Any]:
        return limited_models({"repair": repair, "cheap": cast(Any, object())}, CapacityLimiter(1))

    limited = anyio.run(build)
    assert limited["repair"] is repair and isinstance(limited["repair"], Searcher)
    assert isinstance(limited["cheap"], LimitedModel)
