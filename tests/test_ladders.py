"""`cascade report --ladders` on synthetic batches whose per-task, per-rung outcomes and costs are
known: the frontier, the cheapest ladder at the floor and the saving match figures worked out by
hand (the small table) and by a brute force written separately here (the large one); a ladder
needing an outcome the batch lacks is unevaluable, never estimated; the ready blocks are valid
config."""

from __future__ import annotations

import itertools
import math
import random
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cascade.config import RungConfig
from cascade.records import Alternative, Attempt, Decision, RunOutcome
from cascade.report.data import ProofCheck, ReportData, TaskResult
from cascade.report.document import Document
from cascade.report.ladder_review import review_ladders, toml_value
from cascade.report.ladder_section import ladders_section
from cascade.report.render import render_markdown
from cascade.workflow_config import WorkflowConfig

MODELS = {"A": "openai/gpt-4o-mini", "B": "openai/gpt-4.1", "C": "anthropic/claude-x", "D": "x/d"}


def _result(task: str, rung: str, verified: bool, cost: float, attempts: int = 1,
            labels: tuple[str, ...] = ()) -> TaskResult:  # fmt: skip
    run = f"{task}.{rung}"
    outcome = RunOutcome(
        run_id=run, task_id=task, status="verified" if verified else "exhausted",
        run_dir=f"/batch/shadow/{rung}/runs/{run}", base_commit="0" * 40, attempts=attempts,
        cost_usd=cost, duration_s=1.0, verified_rung=rung if verified else "",
    )  # fmt: skip
    tries = tuple(
        Attempt(run_id=run, task_id=task, seq=i + 1, rung=rung, model=MODELS.get(rung, "m"),
                attempt=i + 1, status="verified" if verified and i == attempts - 1 else "rejected",
                cost_usd=cost / attempts)
        for i in range(attempts)
    )  # fmt: skip
    return TaskResult(task, outcome, tries, labels, run_dir=outcome.run_dir,
                      proof=ProofCheck(True, "intact, unsigned"))  # fmt: skip


def _batch(
    table: Mapping[str, Mapping[str, tuple[bool, float] | None]],
    ladder: tuple[str, ...],
    labels: Mapping[str, tuple[str, ...]] | None = None,
) -> ReportData:
    """`table[rung][task]`: (verified, cost) of that rung alone, or None for no outcome. The
    main batch's own runs climb `ladder` with the same outcomes."""
    tasks = list(next(iter(table.values())))
    labels = labels or {}
    data = ReportData(
        sources=["/batch"], ladder=ladder, models={r: MODELS.get(r, "m") for r in ladder}
    )
    for task in tasks:
        attempts: list[Attempt] = []
        verified_on, cost = "", 0.0
        for rung in ladder:
            cell = table[rung][task]
            assert cell is not None
            attempts += _result(task, rung, cell[0], cell[1]).attempts
            cost += cell[1]
            if cell[0]:
                verified_on = rung
                break
        outcome = RunOutcome(
            run_id=f"{task}.r1", task_id=task, status="verified" if verified_on else "exhausted",
            run_dir="", base_commit="0" * 40, attempts=len(attempts), cost_usd=cost,
            duration_s=1.0, verified_rung=verified_on,
        )  # fmt: skip
        data.tasks.append(TaskResult(task, outcome, tuple(attempts), labels.get(task, ("bug",))))
    data.planned = set(tasks)
    for rung, cells in table.items():
        shadow = ReportData(sources=[f"/batch/shadow/rung-{rung}"], ladder=(rung,))
        shadow.rung_configs = {rung: {"name": rung, "model": MODELS.get(rung, "m"), "attempts": 2}}
        shadow.planned = set(tasks)
        shadow.tasks = [
            _result(t, rung, c[0], c[1], labels=labels.get(t, ())) for t, c in cells.items() if c
        ]
        data.shadows[f"rung-{rung}"] = shadow
    return data


# Six tasks. Alone, A ($0.01 a task) verifies t1 t2; B ($0.05) t1-t4; C ($0.20) t1-t5; none t6.
SMALL = {
    "A": {f"t{i}": (i <= 2, 0.01) for i in range(1, 7)},
    "B": {f"t{i}": (i <= 4, 0.05) for i in range(1, 7)},
    "C": {f"t{i}": (i <= 5, 0.20) for i in range(1, 7)},
}


def _names(rows: list[dict[str, Any]]) -> list[str]:
    return [" → ".join(r["ladder"]) for r in rows]


def test_the_small_table_matches_the_hand_worked_figures() -> None:
    review = review_ladders(_batch(SMALL, ("A", "B", "C")), floor=0.95, max_rungs=3, min_group=20)
    assert review["available"] and review["evaluable"] == 3 + 6 + 6 and review["unevaluable"] == 0
    # Frontier: A ($0.06, 2), then A → B ($0.06 + 4 × $0.05 = $0.26, 4), then A → B → C
    # ($0.26 + 2 × $0.20 = $0.66, 5). B alone ($0.30, 4) and C alone ($1.20, 5) are beaten.
    assert _names(review["frontier"]) == ["A", "A → B", "A → B → C"]
    assert [r["cost_usd"] for r in review["frontier"]] == pytest.approx([0.06, 0.26, 0.66])
    assert [r["verified"] for r in review["frontier"]] == [2, 4, 5]
    # The floor: 95% of C's 5/6 is 79%, so 5 tasks are needed; the cheapest with 5 is A → B → C
    # (B → C costs $0.70, A → C $0.86, B → A → C $0.72).
    assert review["target_solve_rate"] == pytest.approx(0.95 * 5 / 6, abs=1e-4)
    best = review["recommended"]
    assert best["ladder"] == ["A", "B", "C"]
    assert best["cost_usd"] == pytest.approx(0.66)
    assert best["per_verified_usd"] == pytest.approx(0.132)
    assert best["mean_attempts"] == pytest.approx(12 / 6, abs=1e-3)  # 6 + 4 + 2 answers
    assert best["escalation_rate"] == pytest.approx(4 / 6, abs=1e-4)  # t3-t6 went past A
    assert best["ci95"] == pytest.approx([0.4365, 0.9699], abs=1e-4)  # Wilson, 5 of 6
    # Always the strongest: C alone, $1.20 for 5/6; the saving is $0.54, 45%.
    assert review["always_strongest"]["cost_usd"] == pytest.approx(1.20)
    assert review["saving"]["usd"] == pytest.approx(0.54)
    assert review["saving"]["share"] == pytest.approx(0.45)
    assert review["saving"]["solve_rate_change"] == 0
    # The replayed ladder is A → B → C, and its projection is exactly its measurement here.
    replayed = review["replayed"]
    assert replayed["actual"]["cost_usd"] == pytest.approx(replayed["projected"]["cost_usd"])
    assert replayed["actual"]["verified"] == replayed["projected"]["verified"] == 5


def test_a_lower_floor_takes_a_cheaper_ladder_and_max_rungs_bounds_the_search() -> None:
    data = _batch(SMALL, ("A", "B", "C"))
    # 60% of 5/6 is 50%: three tasks; A → B ($0.26, 4/6) is the cheapest that reaches it.
    assert review_ladders(data, floor=0.6, max_rungs=3, min_group=20)["recommended"]["ladder"] == [
        "A",
        "B",
    ]
    one = review_ladders(data, floor=0.95, max_rungs=1, min_group=20)
    assert one["evaluable"] == 3 and one["recommended"]["ladder"] == ["C"]
    assert one["saving"]["usd"] == 0


def test_a_missing_outcome_makes_only_the_ladders_that_need_it_unevaluable() -> None:
    d: dict[str, tuple[bool, float] | None] = {f"t{i}": (i != 6, 0.02) for i in range(1, 7)}
    d["t3"] = None  # D's run on t3 ended in an infrastructure error, say
    review = review_ladders(
        _batch({**SMALL, "D": d}, ("A", "B", "C")), floor=0.95, max_rungs=2, min_group=20
    )
    rows = {" → ".join(r["ladder"]): r for r in review["ladders"]}
    assert rows["D"]["evaluable"] is False
    assert rows["D"]["missing"] == [{"rung": "D", "task": "t3"}]
    assert rows["A → D"]["evaluable"] is False  # A fails t3, so D's t3 is needed
    assert rows["B → D"]["evaluable"] is True  # B verifies t3 first: D's t3 is never asked
    assert rows["B → D"]["cost_usd"] == pytest.approx(0.30 + 2 * 0.02)
    # D alone would look best (5 of 6 at $0.10); it is not recommended on a guess, and no
    # unevaluable ladder is on the frontier.
    assert all(r["evaluable"] for r in review["frontier"])
    assert "D" not in _names(review["frontier"])
    assert review["recommended"]["ladder"] == ["B", "D"]
    markdown = render_markdown(Document("r", [ladders_section(review, _out())]))
    assert "unevaluable" in markdown and "needs D on t3" in markdown


def _out() -> Path:  # the report's folder, for relative links
    return Path("/batch")


def _brute_force(
    table: dict[str, dict[str, tuple[bool, float]]], max_rungs: int, floor: float
) -> tuple[list[tuple[tuple[str, ...], float, int]], tuple[str, ...], float]:
    """Independently: each ladder's cost and count by sets, its frontier by pairwise dominance,
    and the cheapest ladder at the floor."""
    tasks = set(next(iter(table.values())))
    scored = []
    for size in range(1, max_rungs + 1):
        for ladder in itertools.permutations(table, size):
            left, cost = set(tasks), 0.0
            for rung in ladder:
                cost += sum(table[rung][t][1] for t in left)
                left -= {t for t in left if table[rung][t][0]}
            scored.append((ladder, cost, len(tasks) - len(left)))
    front = [
        s
        for s in scored
        if not any(
            (o[1] <= s[1] + 1e-12 and o[2] >= s[2]) and (o[1] < s[1] - 1e-12 or o[2] > s[2])
            for o in scored
        )
    ]
    best_single = max(s[2] for s in scored if len(s[0]) == 1)
    ok = [s for s in scored if s[2] >= floor * best_single - 1e-9]
    cheapest = min(ok, key=lambda s: (round(s[1], 10), -s[2], len(s[0])))
    return front, cheapest[0], cheapest[1]


def test_a_large_random_table_agrees_with_a_brute_force() -> None:
    rng = random.Random(5)
    chance = {"A": 0.3, "B": 0.5, "C": 0.7, "D": 0.8}
    price = {"A": 0.001, "B": 0.01, "C": 0.04, "D": 0.12}
    table = {
        r: {f"T{i:03d}": (rng.random() < chance[r], round(price[r] * rng.uniform(0.5, 2), 6))
            for i in range(120)}
        for r in chance
    }  # fmt: skip
    review = review_ladders(_batch(table, ("A", "B", "D")), floor=0.9, max_rungs=3, min_group=999)
    front, best, cost = _brute_force(table, 3, 0.9)
    assert review["evaluable"] == 4 + 12 + 24
    got = {(tuple(r["ladder"]), round(r["cost_usd"], 6), r["verified"]) for r in review["frontier"]}
    want_points = {(round(c, 6), n) for _, c, n in front}
    assert {(c, n) for _, c, n in got} == want_points  # the same frontier points
    assert all(any(ladder == f[0] for f in front) for ladder, _, _ in got)
    assert tuple(review["recommended"]["ladder"]) == best
    assert review["recommended"]["cost_usd"] == pytest.approx(cost)
    strongest = sum(c for _, c in table["D"].values())
    assert review["saving"]["usd"] == pytest.approx(strongest - cost)
    solved = review["recommended"]["verified"]
    lo, hi = review["recommended"]["ci95"]
    p, z = solved / 120, 1.959963984540054
    centre = (p + z * z / 240) / (1 + z * z / 120)
    half = z * math.sqrt(p * (1 - p) / 120 + z * z / (4 * 120 * 120)) / (1 + z * z / 120)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), abs=1e-4)


def test_a_label_with_enough_tasks_gets_its_own_ready_workflow_block() -> None:
    # Docs tasks (t1, t2) are verified by A alone; the rest need more.
    labels = {"t1": ("docs",), "t2": ("docs",)}
    review = review_ladders(
        _batch(SMALL, ("A", "B", "C"), labels), floor=0.95, max_rungs=3, min_group=2
    )
    groups = {(g["kind"], g["name"]): g for g in review["groups"]}
    docs = groups[("label", "docs")]
    assert docs["tasks"] == 2 and docs["recommended"]["ladder"] == ["A"]
    flow = tomllib.loads(docs["ready_block"])["workflows"][0]
    checked = WorkflowConfig.model_validate(flow)
    assert checked.match.labels == ("docs",) and checked.ladder.rungs == ("A",)
    # The other tasks (t3-t6) never pass A: B → C ($0.20 + $0.40) beats A → B → C ($0.64).
    bug = groups[("label", "bug")]
    assert bug["recommended"]["ladder"] == ["B", "C"]
    assert tomllib.loads(bug["ready_block"])["workflows"][0]["ladder"]["rungs"] == ["B", "C"]
    small = review_ladders(
        _batch(SMALL, ("A", "B", "C"), labels), floor=0.95, max_rungs=3, min_group=3
    )
    docs = {(g["kind"], g["name"]): g for g in small["groups"]}[("label", "docs")]
    assert "recommended" not in docs and "fewer than 3" in docs["why"]


def test_the_ready_ladder_block_is_valid_config_with_each_rungs_settings() -> None:
    review = review_ladders(_batch(SMALL, ("A", "B", "C")), floor=0.95, max_rungs=3, min_group=20)
    rungs = tomllib.loads(review["ready_block"])["ladder"]
    assert [RungConfig.model_validate(r).name for r in rungs] == ["A", "B", "C"]
    assert rungs[0] == {"name": "A", "model": MODELS["A"], "attempts": 2}
    # Values a rung can hold survive the round trip, escapes and nested tables included.
    odd = {"name": 'a "q" \\ \x7f é', "tools": {"allow": [["git", "diff"]], "max_steps": 3},
           "temperature": 1e-07, "flag": False}  # fmt: skip
    text = "\n".join(f"{k} = {toml_value(v)}" for k, v in odd.items())
    assert tomllib.loads(text) == odd


def test_no_single_rung_shadow_is_said_plainly() -> None:
    data = _batch(SMALL, ("A", "B", "C"))
    data.shadows = {}
    review = review_ladders(data, floor=0.95, max_rungs=3, min_group=20)
    assert review["available"] is False
    assert "--shadow all" in review["why"]
    markdown = render_markdown(Document("r", [ladders_section(review, _out())]))
    assert "No ladder can be projected" in markdown


def test_a_run_whose_proof_fails_or_errored_is_a_gap_not_an_outcome() -> None:
    data = _batch(SMALL, ("A", "B", "C"))
    shadow = data.shadows["rung-C"]
    broken = shadow.tasks[0]
    shadow.tasks[0] = TaskResult(
        broken.task_id, broken.outcome, broken.attempts, run_dir=broken.run_dir,
        proof=ProofCheck(False, "broken: record 2 was changed"),
    )  # fmt: skip
    errored = shadow.tasks[1]
    shadow.tasks[1] = TaskResult(
        errored.task_id, errored.outcome.model_copy(update={"status": "error"}),
        errored.attempts, run_dir=errored.run_dir,
    )  # fmt: skip
    review = review_ladders(data, floor=0.95, max_rungs=3, min_group=20)
    gaps = {g["task"]: g["why"] for r in review["rungs"] if r["rung"] == "C" for g in r["gaps"]}
    assert "proof does not verify" in gaps["t1"] and "--retry-errors" in gaps["t2"]
    rows = {" → ".join(r["ladder"]): r for r in review["ladders"]}
    assert rows["C"]["evaluable"] is False
    assert rows["A → C"]["evaluable"] is True  # A verifies t1 and t2 before C is asked


def test_the_replayed_check_notes_tasks_a_workflow_moved_but_not_a_rung_that_passed() -> None:
    data = _batch(SMALL, ("A", "B", "C"))
    first = data.tasks[0]
    passed = Decision(kind="start", why="start at B", rejected=(Alternative(rung="A", why="no"),))
    moved = Decision(kind="start", why="start at B", route="workflow docs")
    for decision, noted in ((passed, False), (moved, True)):
        attempt = first.attempts[0].model_copy(update={"rung": "B", "decision": decision})
        data.tasks[0] = TaskResult(first.task_id, first.outcome, (attempt,), first.labels)
        notes = review_ladders(data, floor=0.95, max_rungs=3, min_group=20)["replayed"]["notes"]
        assert bool(notes) is noted


def test_a_strongest_rung_missing_outcomes_leaves_the_floor_unknown_not_lowered() -> None:
    # 40 tasks: A verifies 20; B 39, but its run on t0 errored. Without that gap the floor would
    # be set by A alone, and A (verifying none of the hard tasks) would be recommended.
    table: dict[str, dict[str, tuple[bool, float] | None]] = {
        "A": {f"t{i}": (i < 20, 0.01) for i in range(40)},
        "B": {f"t{i}": (i != 39, 0.1) for i in range(40)},
    }
    table["B"]["t0"] = None
    labels = {f"t{i}": ("hard",) for i in range(20, 40)}
    review = review_ladders(
        _batch({"A": table["A"], "B": table["A"]}, ("A", "B"), labels),  # the main batch's runs
        floor=0.95, max_rungs=2, min_group=5,
    )  # fmt: skip
    assert review["recommended"] is not None  # with complete data there is a recommendation
    data = _batch({"A": table["A"], "B": table["A"]}, ("A", "B"), labels)
    data.shadows["rung-B"].tasks = [
        _result(t, "B", c[0], c[1]) for t, c in table["B"].items() if c is not None
    ]
    review = review_ladders(data, floor=0.95, max_rungs=2, min_group=5)
    assert review["recommended"] is None and review["ready_block"] == ""
    assert "B lacks 1 outcome" in review["why_none"] and "floor is not known" in review["why_none"]
    # On the hard tasks alone B has every outcome (its gap is t0): that group's floor is known.
    hard = {(g["kind"], g["name"]): g for g in review["groups"]}[("label", "hard")]
    assert hard["recommended"]["ladder"] == ["B"] and hard["recommended"]["verified"] == 19
    markdown = render_markdown(Document("r", [ladders_section(review, _out())]))
    assert "floor is not known" in markdown


def test_a_ladder_that_verifies_nothing_is_never_recommended() -> None:
    table = {"A": {f"t{i}": (False, 0.01) for i in range(5)}}
    review = review_ladders(_batch(table, ("A",)), floor=0.95, max_rungs=2, min_group=20)
    assert review["recommended"] is None and review["ready_block"] == ""
    assert review["why_none"] == "no ladder verifies any task"


def test_the_batch_cap_stopping_a_task_is_a_gap_its_own_cap_an_outcome() -> None:
    reasons = {
        "budget: the batch has committed $0.2500 of its batch_max_cost_usd $0.3000; ...": True,
        "budget: the task has spent $0.1000 of its max_cost_usd $0.1000; ...": False,
    }
    for reason, gap in reasons.items():
        data = _batch(SMALL, ("A", "B", "C"))
        shadow = data.shadows["rung-C"]
        stopped = shadow.tasks[2]
        update = {"status": "budget_exhausted", "stop_reason": reason, "verified_rung": ""}
        shadow.tasks[2] = TaskResult(
            stopped.task_id, stopped.outcome.model_copy(update=update), (),
            run_dir=stopped.run_dir,
        )  # fmt: skip
        review = review_ladders(data, floor=0.95, max_rungs=3, min_group=20)
        rows = {" → ".join(r["ladder"]): r for r in review["ladders"]}
        if gap:  # the shadow's purse ran out: what C would have done on t3 is unknown
            assert rows["C"]["missing"] == [{"rung": "C", "task": "t3"}]
        else:  # the task's own cap stops a ladder too: C did not verify t3, at its cost
            assert rows["C"]["evaluable"] and rows["C"]["verified"] == 4
            assert review["recommended"] is not None


def test_too_many_ladders_are_refused_before_being_made() -> None:
    many = {f"R{i}": {"t1": (True, 0.01)} for i in range(13)}
    big = review_ladders(_batch(many, ("R0",)), floor=0.95, max_rungs=8, min_group=20)
    assert big["available"] is False and "lower --max-rungs" in big["why"]


def test_group_blocks_for_workflows_and_unlabelled_tasks_are_never_invalid_config() -> None:
    labels = {"t1": (), "t2": ()}
    review = review_ladders(
        _batch(SMALL, ("A", "B", "C"), labels), floor=0.95, max_rungs=3, min_group=2
    )
    groups = {(g["kind"], g["name"]): g for g in review["groups"]}
    unlabelled = groups[("label", "(no label)")]
    assert "ready_block" not in unlabelled and "without a label" in unlabelled["block_why"]
    hostile = {f"t{i}": ('x"]\n[[ladder]]\nname = "evil',) for i in range(1, 7)}
    review = review_ladders(
        _batch(SMALL, ("A", "B", "C"), hostile), floor=0.95, max_rungs=3, min_group=2
    )
    block = next(g for g in review["groups"] if g["kind"] == "label")["ready_block"]
    parsed = tomllib.loads(block)
    assert "ladder" not in parsed and parsed["workflows"][0]["match"]["labels"] == [
        hostile["t1"][0]
    ]


def _loaded(tmp: Path, lane: list[str], shadow_model: str = "") -> Any:
    from cascade.config import CascadeConfig
    from cascade.wiring.settings import LoadedConfig

    config = CascadeConfig.model_validate({
        "ladder": [{"name": "local", "model": "ollama_chat/x"}, {"name": "cheap", "model": "m/c"},
                   {"name": "strong", "model": "m/s"}],
        "workflows": [{"name": "private", "match": {"labels": ["private"]},
                       "ladder": {"rungs": lane}}],
    })  # fmt: skip
    return LoadedConfig(config, tmp, tmp, None)


def test_shadow_all_keeps_a_lane_to_its_own_rungs_and_refuses_what_it_forbids(
    tmp_path: Path,
) -> None:
    from cascade.errors import ConfigError
    from cascade.replay.shadow import shadow_configs

    every = shadow_configs(_loaded(tmp_path, ["local", "cheap", "strong"]), "all")
    assert [name for name, _ in every] == ["rung-local", "rung-cheap", "strongest-strong"]
    for (_, loaded), rung in zip(every, ("local", "cheap", "strong"), strict=True):
        assert loaded.config.workflows[0].ladder.rungs == (rung,)
    with pytest.raises(ConfigError, match=r"privacy lane .* has none of them"):
        shadow_configs(_loaded(tmp_path, ["local"]), "all")
    # A TOML shadow's rung named like a lane's, but another model, does not widen the lane.
    other = tmp_path / "other.toml"
    other.write_text('[[ladder]]\nname = "local"\nmodel = "openai/gpt-4o"\n')
    with pytest.raises(ConfigError, match="never widened"):
        shadow_configs(_loaded(tmp_path, ["local"]), str(other))
    # Nor by the same name and model at another endpoint.
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(
        '[[ladder]]\nname = "local"\nmodel = "ollama_chat/x"\n'
        'api_base = "https://api.example-cloud.com/v1"\n'
    )
    with pytest.raises(ConfigError, match="never widened"):
        shadow_configs(_loaded(tmp_path, ["local"]), str(elsewhere))
    # Two rung names that flatten alike get folders apart.
    loaded = _loaded(tmp_path, [])
    odd = loaded.config.model_copy(update={"ladder": (
        RungConfig(name="gpt (mini)", model="m/a"), RungConfig(name="gpt [mini]", model="m/b"),
        RungConfig(name="s", model="m/s"),
    )})  # fmt: skip
    names = [n for n, _ in shadow_configs(loaded.__class__(odd, tmp_path, tmp_path, None), "all")]
    assert len(set(names)) == 3
