"""Writes a comparison of two batches (`cascade.report.compare`) as comparison.json, .md and .html,
with one chart: both batches' verified count (with its 95% interval) against cost on one axis,
and their cost per verified patch split by rung."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cascade.report.charts import (
    MISSING,
    WIDTH_IN,
    Matplotlib,
    load_matplotlib,
    plot_points,
    usd_axis,
)
from cascade.report.compare import MAX_DIFFERING, build_comparison, metric_rows
from cascade.report.document import (
    Block,
    Bullets,
    Cell,
    Document,
    Images,
    Link,
    Section,
    Table,
    Text,
    relative_href,
)
from cascade.report.headline import money
from cascade.report.page import html_page
from cascade.report.render import CHARTS_OFF, render_markdown
from cascade.report.sections import written_by

log = logging.getLogger(__name__)

COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
COMPARISON_HTML = "comparison.html"
COMPARISON_CHART = "comparison.png"


def write_comparison(
    a: dict[str, Any], b: dict[str, Any], out: Path, *, charts: bool = True
) -> list[Path]:
    """Compare reports `a` and `b` into `out`; returns comparison.json, .md, .html[, .png]."""
    out.mkdir(parents=True, exist_ok=True)
    comparison = build_comparison(a, b)
    pngs: list[Path] = []
    notes = [CHARTS_OFF]
    if charts:
        mpl = load_matplotlib()
        if mpl is None:
            log.warning("%s", MISSING)
            notes = [MISSING]
        else:
            pngs, notes = [_chart(mpl, comparison, out / COMPARISON_CHART)], []
    doc = comparison_document(comparison, out, pngs, notes)
    (out / COMPARISON_JSON).write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
    (out / COMPARISON_MD).write_text(render_markdown(doc), encoding="utf-8")
    (out / COMPARISON_HTML).write_text(html_page(doc), encoding="utf-8")
    return [out / COMPARISON_JSON, out / COMPARISON_MD, out / COMPARISON_HTML, *pngs]


def comparison_document(
    c: dict[str, Any], out: Path, charts: list[Path], notes: list[str]
) -> Document:
    a, b = c["batches"]["A"], c["batches"]["B"]
    lead: list[Block] = [
        Text(c["headline"], strong=True, id="headline"),
        Text(f"{written_by(c['provenance'])}. A is {_describe(a)}; B is {_describe(b)}."),
    ]
    metrics = Table(
        ("", "A", "B", "B − A"), [tuple(row) for row in metric_rows(c)], frozenset({1, 2, 3}),
        id="metrics",
    )  # fmt: skip
    rungs = list(dict.fromkeys([*a["rungs"], *b["rungs"]]))
    per_rung: list[tuple[Cell, ...]] = [
        (rung, *(_rung_cells(s["rungs"].get(rung)) for s in (a, b)))
        for rung in rungs
    ]  # fmt: skip
    rung_table = Table(
        ("rung", "A: verified, cost", "B: verified, cost"), per_rung, frozenset({1, 2})
    )
    sections = [
        Section("", tuple(lead), id="lead"),
        Section("Charts", (Images(tuple(charts), tuple(notes)),), id="charts"),
        Section("Side by side", (metrics,), id="side-by-side"),
        Section("Per rung", (rung_table,), id="rungs"),
        Section("Tasks whose outcome differs", _differing(c, out), id="differing"),
    ]
    if c["notes"]:
        sections.append(Section("Notes", (Bullets(tuple(c["notes"])),), id="notes"))
    return Document("Comparison of two replay batches", sections)


def _describe(s: dict[str, Any]) -> str:
    return (
        f"{', '.join(s['sources']) or '—'} (ladder {' → '.join(s['ladder']) or '—'}; "
        f"gate {', '.join(s['gate']) or '—'})"
    )


def _rung_cells(r: dict[str, Any] | None) -> str:
    return "—" if r is None else f"{r['verified']}, {money(r['cost_usd'])}"


def _differing(c: dict[str, Any], out: Path) -> tuple[Block, ...]:
    rows: list[tuple[Cell, ...]] = []
    for d in c["differing"][:MAX_DIFFERING]:
        cells: list[Cell] = [d["task"], d["title"]]
        for side in "ab":
            outcome = d[f"status_{side}"] + (
                f" on {d[f'verified_rung_{side}']}" if d[f"verified_rung_{side}"] else ""
            )
            summary = d[f"summary_md_{side}"]
            cells.append(Link(outcome, relative_href(summary, out)) if summary else outcome)
            cells.append(money(d[f"cost_usd_{side}"]))
        rows.append(tuple(cells))
    if not rows:
        return (Text(f"None: the {c['shared_tasks']} shared task(s) ended the same way in both."),)
    head = ("task", "title", "A", "A cost", "B", "B cost")
    blocks: list[Block] = [Table(head, rows, frozenset({3, 5}), id="differing-table")]
    left = len(c["differing"]) - len(rows)
    if left:
        blocks.append(Text(f"…and {left} more (all of them are in {COMPARISON_JSON})."))
    return tuple(blocks)


def _chart(mpl: Matplotlib, c: dict[str, Any], path: Path) -> Path:
    a, b = c["batches"]["A"], c["batches"]["B"]
    fig = mpl.figure.Figure(figsize=(WIDTH_IN, 7.5), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 2))
    n = max(a["tasks"], b["tasks"])
    points = [(name, s["verified"], s["cost_usd"], "cascade" if name == "A" else "shadow")
              for name, s in (("A", a), ("B", b))]  # fmt: skip
    plot_points(mpl, top, points, n)
    top.set_title("A and B: verified tasks (95% interval) against total cost")
    rungs = list(dict.fromkeys([*a["rungs"], *b["rungs"]]))
    left = [0.0, 0.0]
    for i, rung in enumerate(rungs):
        widths = [
            s["rungs"].get(rung, {}).get("cost_usd", 0.0) / (s["verified"] or 1) for s in (a, b)
        ]
        bottom.barh(["A", "B"], widths, left=left, color=f"C{i % 10}", label=rung[:24])
        left = [x + w for x, w in zip(left, widths, strict=True)]
    for y, s in enumerate((a, b)):
        said = money(left[y]) if s["verified"] else f"nothing verified: {money(left[y])} spent"
        bottom.text(left[y], y, f" {said}", va="center", fontsize="small")
    bottom.margins(x=0.25)
    bottom.invert_yaxis()
    usd_axis(mpl, bottom.xaxis)
    bottom.set_title("Cost per verified patch, by the rung that spent it")
    bottom.legend(loc="lower right", fontsize="small")
    fig.savefig(path)
    return path
