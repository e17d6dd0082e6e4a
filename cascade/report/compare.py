"""`cascade report compare A B`: two batches side by side (two ladders, two gate settings, a
batch and its shadow): each one's verified share with its 95% interval and cost, the metrics
next to each other, and — on the tasks both ran — which verified only in one, with an exact
McNemar test of whether that difference could be chance."""

from __future__ import annotations

import math
from typing import Any

from cascade.records import SCHEMA_VERSION
from cascade.report.headline import money, share, wilson_interval

NAMES = ("A", "B")
MAX_DIFFERING = 200  # rows of the per-task table; the JSON keeps them all


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (a binomial test at 1/2)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail: float = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return round(min(1.0, 2 * tail), 4)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one batch that a comparison puts side by side."""
    t, cost, time_ = report["tasks"], report["cost"], report["time"]
    interval = wilson_interval(t["verified"], t["total"])
    return {
        "sources": report["sources"],
        "ladder": report["ladder"],
        "gate": report["gate"],
        "base_commits": report["base_commits"],
        "tasks": t["total"],
        "verified": t["verified"],
        "verified_share": t["solve_rate"],
        "ci95": list(interval) if interval else None,
        "errors": t["error"],
        "cost_usd": cost["total_usd"],
        "per_verified_usd": cost["per_verified_usd"],
        "unverified_usd": cost["unverified_usd"],
        "escalation_rate": report["escalation_rate"],
        "attempts_per_task": report["attempts"]["per_task_mean"],
        "task_p50_s": time_["task_p50_s"],
        "task_p95_s": time_["task_p95_s"],
        "tokens_in": report["tokens"]["in"],
        "tokens_out": report["tokens"]["out"],
        "rungs": {
            name: {"verified": r["verified"], "cost_usd": r["cost_usd"]}
            for name, r in report["rungs"].items()
        },
        "headline": report["headline"]["text"],
    }


def build_comparison(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    rows_a = {r["task"]: r for r in a["task_rows"]}
    rows_b = {r["task"]: r for r in b["task_rows"]}
    shared = [task for task in rows_a if task in rows_b]
    verified_a = {t for t in shared if rows_a[t]["status"] == "verified"}
    verified_b = {t for t in shared if rows_b[t]["status"] == "verified"}
    only_a, only_b = sorted(verified_a - verified_b), sorted(verified_b - verified_a)
    differing = []
    for task in shared:
        x, y = rows_a[task], rows_b[task]
        if (x["status"], x["verified_rung"]) == (y["status"], y["verified_rung"]):
            continue
        row: dict[str, Any] = {"task": task, "title": x.get("title", "")}
        for side, source in (("a", x), ("b", y)):
            for key in ("status", "verified_rung", "cost_usd", "summary_md"):
                row[f"{key}_{side}"] = source.get(key, "")
        differing.append(row)
    notes = []
    if len(shared) < max(len(rows_a), len(rows_b)):
        notes.append(
            f"The batches share {len(shared)} task(s); A alone has {len(rows_a) - len(shared)}, "
            f"B alone {len(rows_b) - len(shared)}: the paired numbers cover the shared ones only."
        )
    if a["base_commits"] != b["base_commits"]:
        notes.append("The batches ran against different base commits.")
    comparison: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "batches": {"A": summary(a), "B": summary(b)},
        "shared_tasks": len(shared),
        "verified_only_in_a": only_a,
        "verified_only_in_b": only_b,
        "mcnemar_p": mcnemar_exact(len(only_a), len(only_b)),
        "differing": differing,
        "notes": notes,
        "provenance": {k: v for k, v in b["provenance"].items() if k != "prices"},
    }
    comparison["headline"] = _headline(comparison)
    return comparison


def _one(name: str, s: dict[str, Any]) -> str:
    n = s["tasks"]
    if not n:
        return f"{name} finished no task"
    lo, hi = s["ci95"]
    return (
        f"{name} verified {s['verified']}/{n} ({share(lo, n)}–{share(hi, n)}, 95% interval) "
        f"for {money(s['cost_usd'])}"
    )


def _headline(c: dict[str, Any]) -> str:
    a, b = c["batches"]["A"], c["batches"]["B"]
    text = f"{_one('A', a)}; {_one('B', b)}"
    if a["cost_usd"] > 0 and b["tasks"] and a["tasks"]:
        change = b["cost_usd"] / a["cost_usd"] - 1
        delta = b["verified"] - a["verified"]
        verified = (
            "for the same verified count"
            if delta == 0
            else f"verifying {abs(delta)} {'more' if delta > 0 else 'fewer'}"
        )
        text += f" — B cost {abs(change):.0%} {'more' if change > 0 else 'less'}, {verified}"
    text += "."
    discordant = len(c["verified_only_in_a"]) + len(c["verified_only_in_b"])
    if c["shared_tasks"] and not discordant:
        text += f" On the {c['shared_tasks']} task(s) both ran, both verified the same ones."
    elif c["shared_tasks"]:
        p = c["mcnemar_p"]
        verdict = (
            "unlikely to be chance" if p < 0.05 else "within what chance gives at this sample size"
        )
        text += (
            f" On the {c['shared_tasks']} task(s) both ran, {len(c['verified_only_in_a'])} "
            f"verified only in A and {len(c['verified_only_in_b'])} only in B "
            f"(exact McNemar {'p < 0.001' if p < 0.001 else f'p = {p:.3g}'}: {verdict})."
        )
    return text


def metric_rows(c: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, A, B, B − A) for the side-by-side table."""
    a, b = c["batches"]["A"], c["batches"]["B"]

    def ci(s: dict[str, Any]) -> str:
        if not s["ci95"]:
            return "—"
        return f"{share(s['ci95'][0], s['tasks'])}–{share(s['ci95'][1], s['tasks'])}"

    def num(key: str, fmt: Any, signed: Any = None) -> tuple[str, str, str]:
        x, y = a[key], b[key]
        diff = "—" if x is None or y is None else (signed or fmt)(y - x)
        return fmt(x), fmt(y), diff

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:.0%}"

    def pts(v: float) -> str:
        return f"{v * 100:+.0f} pts" if round(v * 100) else "0 pts"

    def usd(v: float | None) -> str:
        return money(v)

    def signed_usd(v: float) -> str:
        return ("+" if v > 0 else "−" if v < 0 else "") + money(abs(v))

    def sec(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f} s"

    def signed_sec(v: float) -> str:
        return f"{v:+.1f} s" if round(v, 1) else "0.0 s"

    def count(v: int | float | None) -> str:
        return "—" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    def signed_count(v: float) -> str:
        return f"{v:+g}" if v else "0"

    return [
        ("folder", ", ".join(a["sources"]), ", ".join(b["sources"]), ""),
        ("ladder", " → ".join(a["ladder"]), " → ".join(b["ladder"]), ""),
        ("gate", ", ".join(a["gate"]), ", ".join(b["gate"]), ""),
        ("tasks", *num("tasks", count, signed_count)),
        ("verified", *num("verified", count, signed_count)),
        ("verified share", *num("verified_share", pct, pts)),
        ("95% interval (Wilson)", ci(a), ci(b), ""),
        ("infrastructure errors", *num("errors", count, signed_count)),
        ("total cost", *num("cost_usd", usd, signed_usd)),
        ("cost per verified patch", *num("per_verified_usd", usd, signed_usd)),
        ("spent on unverified tasks", *num("unverified_usd", usd, signed_usd)),
        ("escalation rate", *num("escalation_rate", pct, pts)),
        ("attempts per task", *num("attempts_per_task", count, signed_count)),
        ("wall time per task, p50", *num("task_p50_s", sec, signed_sec)),
        ("wall time per task, p95", *num("task_p95_s", sec, signed_sec)),
        ("tokens in", *num("tokens_in", count, signed_count)),
        ("tokens out", *num("tokens_out", count, signed_count)),
    ]
