"""The report's headline: one sentence a team lead can quote — what the cascade verified and spent,
with the sample size and a 95% interval, against the baselines the data supports — and the
Wilson score interval it states (sound at small n and at 0% or 100%, unlike p ± 1.96·SE)."""

from __future__ import annotations

import math
from typing import Any

Z95 = 1.959963984540054  # the two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for a share of `successes` in `n`; None for n = 0."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def money(value: float | None) -> str:
    """Dollars at a precision that suits the amount ($0.0031, $4.27, $1,204)."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) >= 1000:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.4f}"


def share(value: float, n: int) -> str:
    """A percentage with the precision the sample size earns."""
    return f"{value:.0%}" if n < 200 else f"{value:.1%}"


def build_headline(report: dict[str, Any]) -> dict[str, Any]:
    """The headline's numbers and its sentence (plain text: renderers add emphasis)."""
    tasks, cost = report["tasks"], report["cost"]
    n, verified = tasks["total"], tasks["verified"]
    interval = wilson_interval(verified, n)
    facts: dict[str, Any] = {
        "n": n,
        "verified": verified,
        "verified_share": tasks["solve_rate"],
        "ci95": list(interval) if interval else None,
        "interval": "Wilson score",  # at 95%
        "cost_usd": cost["total_usd"],
        "per_verified_usd": cost["per_verified_usd"],
    }
    if n == 0:
        return {**facts, "text": "No task has finished yet: nothing to report."}
    lo, hi = interval or (0.0, 0.0)
    text = (
        f"{verified}/{n} verified for {money(cost['total_usd'])} "
        f"({share(verified / n, n)} of n = {n} task{'s' if n != 1 else ''}; "
        f"95% interval {share(lo, n)}–{share(hi, n)})"
    )
    clauses = [_against_strongest(report, verified, cost["total_usd"])]
    clauses.append(_lower_rungs(report, verified))
    text += "".join(part for part in clauses if part) + "."
    if tasks["needs_review"]:
        text += f" {tasks['needs_review']} of the verified patches wait for a person's review."
    if tasks["error"]:
        text += f" {tasks['error']} task(s) ended in an infrastructure error (not a bad answer)."
    if tasks["not_started"]:
        text += f" {len(tasks['not_started'])} planned task(s) never started."
    return {**facts, "text": text}


def _against_strongest(report: dict[str, Any], verified: int, spent: float) -> str:
    ladder = report["ladder"]
    if len(ladder) < 2:
        return ""
    name = f"always strongest rung ({ladder[-1]})"
    row = next((b for b in report["baselines"] if b["name"] == name), None)
    if row is None or not row["available"]:
        return "; always-strongest was not measured (replay with --shadow strongest)"
    same = "the same " if row["verified"] == verified else ""
    text = (
        f"; always-strongest would have cost {money(row['cost_usd'])} for "
        f"{same}{row['verified']}/{row['tasks']}"
    )
    if row["cost_usd"] > 0 and spent > 0:
        change = spent / row["cost_usd"] - 1
        more_less = "more" if change > 0 else "less"
        text += f" (the cascade spent {abs(change):.0%} {more_less})"
    return text


def _lower_rungs(report: dict[str, Any], verified: int) -> str:
    """What the rungs below the last did: a cheap rung that verifies nothing only adds cost."""
    ladder = report["ladder"]
    parts = []
    for rung in ladder[:-1]:
        row = report["rungs"].get(rung)
        if row is None:
            continue
        if row["verified"] == 0:
            parts.append(f"the {rung} rung verified nothing here ({money(row['cost_usd'])} spent)")
        else:
            parts.append(f"the {rung} rung verified {row['verified']} of the {verified}")
    return " — " + "; ".join(parts) if parts else ""
