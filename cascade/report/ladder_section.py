"""The report's "Ladders" section (`cascade report DIR --ladders`, `cascade.report.ladder_review`)
and its chart: the recommendation with its ready `[[ladder]]` block, the frontier, the replayed
ladder beside its projection, each rung alone, per label and workflow, the assumptions, and
every outcome the numbers rest on, linked to its run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.proof.run_folder import SUMMARY_FILE
from cascade.report.charts import Matplotlib, count_axis, new_axes, usd_axis
from cascade.report.document import (
    Block,
    Bullets,
    Cell,
    Code,
    Link,
    Section,
    Table,
    Text,
    relative_href,
)
from cascade.report.headline import money

FRONTIER_CHART = "ladder_frontier.png"
ROW_HEAD = ("ladder", "verified", "solve rate", "95% interval", "cost", "per verified",
            "mean attempts", "escalation")  # fmt: skip


def ladder_text(row: dict[str, Any] | None) -> str:
    return " → ".join(row["ladder"]) if row else "—"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _row(row: dict[str, Any], name: str = "") -> tuple[Cell, ...]:
    if not row["evaluable"]:
        return (name or ladder_text(row), "unevaluable", "—", "—", "—", "—", "—", "—")
    lo, hi = row["ci95"] or (None, None)
    return (
        name or ladder_text(row), f"{row['verified']}/{row['tasks']}", _pct(row["solve_rate"]),
        f"{_pct(lo)}–{_pct(hi)}", money(row["cost_usd"]), money(row["per_verified_usd"]),
        f"{row['mean_attempts']:.2f}", _pct(row["escalation_rate"]),
    )  # fmt: skip


def ladders_section(review: dict[str, Any], out: Path) -> Section:
    if not review["available"]:
        return Section(
            "Ladders", (Text(f"No ladder can be projected: {review['why']}."),), "ladders"
        )
    blocks: list[Block] = [_lead(review), *_recommendation(review)]
    blocks += [
        Text("The Pareto frontier: no other ladder is both cheaper and solves more."),
        Table(ROW_HEAD, [_row(r) for r in review["frontier"]], frozenset(range(1, 8)),
              id="ladders-frontier"),
    ]  # fmt: skip
    blocks += _replayed(review["replayed"])
    blocks += _rungs(review)
    blocks += _groups(review["groups"])
    blocks.append(Text("What a projection assumes:"))
    blocks.append(Bullets(tuple(review["assumptions"])))
    blocks += _unevaluable(review)
    if review["notes"]:
        blocks.append(Bullets(tuple(review["notes"])))
    blocks += _cells(review, out)
    return Section("Ladders", tuple(blocks), id="ladders")


def _lead(review: dict[str, Any]) -> Text:
    return Text(
        f"Projected from {review['tasks']} task(s) × {len(review['rungs'])} rung(s), each run "
        f"alone (replay --shadow all): every ordered ladder of up to "
        f"{min(review['max_rungs'], len(review['rungs']))} of them, {review['evaluable']} "
        f"evaluable and {review['unevaluable']} not. A ladder's cost "
        "on a task is what its rungs cost alone, in order, until one verified. No model was "
        "called for these numbers."
    )


def _recommendation(review: dict[str, Any]) -> list[Block]:
    best, target, single = review["recommended"], review["target_solve_rate"], review["best_single"]
    floor = f"{review['floor']:.0%} of the best single rung's solve rate"
    if single is not None:
        floor += f" ({ladder_text(single)}, {single['solve_rate']:.0%}): {target:.0%}"
    if best is None:
        return [Text(f"No ladder is recommended: {review['why_none']}.", strong=True)]
    lo, hi = best["ci95"]
    text = (
        f"Cheapest ladder at the floor ({floor}): {ladder_text(best)} — {best['verified']}/"
        f"{best['tasks']} verified ({best['solve_rate']:.0%}; 95% interval {lo:.0%}–{hi:.0%}) "
        f"for {money(best['cost_usd'])}, {money(best['per_verified_usd'])} per verified patch"
    )
    top, saving = review["always_strongest"], review["saving"]
    if saving is not None and top is not None:
        text += (
            f"; always-the-strongest ({review['strongest']}) costs {money(top['cost_usd'])} "
            f"for {top['verified']}/{top['tasks']}: {money(saving['usd'])} saved"
            + (f" ({saving['share']:.0%})" if saving["share"] is not None else "")
            + _more(best["verified"] - top["verified"])
        )
    elif review["strongest"]:
        text += f"; always-the-strongest ({review['strongest']}) cannot be projected"
    blocks: list[Block] = [Text(text + ".", strong=True)]
    if review["ready_block"]:
        blocks += [Text("As a ready [[ladder]] block:"), Code(review["ready_block"], "toml")]
    return blocks


def _more(extra: int) -> str:
    if extra > 0:
        return f", and {extra} more task(s) verified"
    return f", at {-extra} task(s) fewer verified" if extra < 0 else ""


def _replayed(replayed: dict[str, Any]) -> list[Block]:
    actual = replayed["actual"]
    rows: list[tuple[Cell, ...]] = []
    name = ladder_text(actual)
    lo, hi = actual["ci95"] or (None, None)
    rows.append((
        f"{name} (replayed)", f"{actual['verified']}/{actual['tasks']}",
        _pct(actual["solve_rate"]), f"{_pct(lo)}–{_pct(hi)}", money(actual["cost_usd"]),
        money(actual["per_verified_usd"]),
        "—" if actual["mean_attempts"] is None else f"{actual['mean_attempts']:.2f}",
        _pct(actual["escalation_rate"]),
    ))  # fmt: skip
    if replayed["projected"] is not None:
        rows.append(_row(replayed["projected"], f"{name} (projected)"))
    blocks: list[Block] = [
        Text("The ladder this batch replayed, measured, beside its projection (the check on the "
             "assumptions below):"),
        Table(ROW_HEAD, rows, frozenset(range(1, 8)), id="ladders-replayed"),
    ]  # fmt: skip
    notes = list(replayed["notes"]) + ([replayed["why"]] if replayed.get("why") else [])
    return [*blocks, Bullets(tuple(notes))] if notes else blocks


def _rungs(review: dict[str, Any]) -> list[Block]:
    rows: list[tuple[Cell, ...]] = [
        (r["rung"], r["model"] or "—", f"{r['verified']}/{r['outcomes']}", money(r["cost_usd"]),
         str(len(r["gaps"])))
        for r in review["rungs"]
    ]  # fmt: skip
    head = ("rung alone", "model", "verified", "cost", "tasks without an outcome")
    blocks: list[Block] = [Table(head, rows, frozenset({2, 3, 4}), id="ladders-rungs")]
    if review["absent_rungs"]:
        blocks.append(
            Text(f"Not run alone, so in no projection: {', '.join(review['absent_rungs'])}.")
        )
    return blocks


def _groups(groups: list[dict[str, Any]]) -> list[Block]:
    if not groups:
        return []
    rows: list[tuple[Cell, ...]] = []
    blocks: list[Block] = []
    for g in groups:
        best = g.get("recommended")
        said = g.get("why") or (
            f"{ladder_text(best)}: {best['verified']}/{best['tasks']} for {money(best['cost_usd'])}"
            if best
            else g.get("why_none", "")
        )
        rows.append((g["kind"], g["name"], str(g["tasks"]), said))  # fmt: skip
        if g.get("ready_block"):
            how = f" ({g['block_why']})" if g.get("block_why") else ""
            blocks += [Text(f"For {g['kind']} {g['name']}{how}:"), Code(g["ready_block"], "toml")]
        elif g.get("block_why"):
            blocks.append(Text(f"For {g['kind']} {g['name']}: {g['block_why']}."))
    head = ("by", "name", "tasks", "cheapest ladder at the floor")
    return [Table(head, rows, frozenset({2}), id="ladders-groups"), *blocks]


def _unevaluable(review: dict[str, Any]) -> list[Block]:
    rows = [r for r in review["ladders"] if not r["evaluable"]]
    if not rows:
        return []
    said = [
        f"{ladder_text(r)}: needs {m['rung']} on {m['task']}"
        for r in rows[:10]
        for m in r["missing"][:1]
    ]
    more = [f"… and {len(rows) - 10} more"] if len(rows) > 10 else []
    return [
        Text(f"{len(rows)} ladder(s) are unevaluable: an outcome they need is not in the batch "
             "(never estimated):"),
        Bullets((*said, *more)),
    ]  # fmt: skip


def _cells(review: dict[str, Any], out: Path) -> list[Block]:
    """Task × rung: each outcome linked to the run that holds it."""
    rungs = [r["rung"] for r in review["rungs"]]
    by_task: dict[str, dict[str, Cell]] = {}
    for c in review["cells"]:
        if "gap" in c:
            cell: Cell = f"— ({c['gap']})"
        else:
            mark = "✓" if c["verified"] else "✗"
            text = f"{mark} {c['status']} {money(c['cost_usd'])}"
            summary = Path(c["run_dir"]) / SUMMARY_FILE
            cell = Link(text, relative_href(summary, out)) if c["run_dir"] else text
        by_task.setdefault(c["task"], {})[c["rung"]] = cell
    rows = [(task, *(cells.get(r, "—") for r in rungs)) for task, cells in by_task.items()]
    return [
        Text("Every outcome the numbers above rest on, each linked to its run:"),
        Table(("task", *rungs), rows, id="ladders-cells"),
    ]


def frontier_chart(mpl: Matplotlib, review: dict[str, Any], path: Path) -> Path:
    """Every evaluable ladder as a dot (cost, verified), the frontier as a line, the
    recommendation and always-the-strongest marked."""
    n = review["tasks"]
    rows = [r for r in review["ladders"] if r["evaluable"]]
    fig, ax = new_axes(mpl)
    ax.scatter([r["cost_usd"] for r in rows], [r["verified"] for r in rows], s=14, color="0.6",
               label=f"{len(rows)} projected ladders")  # fmt: skip
    front = review["frontier"]
    ax.plot([r["cost_usd"] for r in front], [r["verified"] for r in front], "-o", color="C0",
            drawstyle="steps-post", label="frontier")  # fmt: skip
    for r in front:
        ax.annotate(ladder_text(r)[:40], (r["cost_usd"], r["verified"]), fontsize="x-small",
                    xytext=(4, -10), textcoords="offset points")  # fmt: skip
    marks = (("recommended", "C2", "*"), ("always_strongest", "C3", "s"))
    for key, color, marker in marks:
        r = review[key]
        if r is not None and r["evaluable"]:
            ax.plot([r["cost_usd"]], [r["verified"]], marker, color=color, markersize=12,
                    label=f"{key.replace('_', ' ')}: {ladder_text(r)}")  # fmt: skip
    ax.axhline(review["target_solve_rate"] * n, color="0.4", linestyle=":", linewidth=1,
               label=f"floor: {review['target_solve_rate']:.0%} of {n}")  # fmt: skip
    count_axis(mpl, ax.yaxis)
    usd_axis(mpl, ax.xaxis)
    ax.set_ylim(-0.5, n + 0.5)
    ax.set_xlabel("projected total cost (USD)")
    ax.set_ylabel(f"verified tasks (of {n})")
    ax.set_title("Every ladder of the recorded rungs: cost against tasks verified")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.savefig(path)
    return path
