"""Writes a report: report.json (the numbers), report.md and report.html (one document, two
renderings: `cascade.report.sections`), and PNG charts when matplotlib is installed (the
`charts` extra) — with a note in both renderings, and a warning, when they are skipped."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from cascade.proof.summary import cell
from cascade.report.charts import draw_charts, load_matplotlib
from cascade.report.document import Bullets, Code, Document, Images, Link, Mark, Table, Text
from cascade.report.ladder_section import FRONTIER_CHART, frontier_chart
from cascade.report.page import html_page
from cascade.report.sections import report_document

log = logging.getLogger(__name__)

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
CHARTS_OFF = "Charts skipped: turned off (--no-charts)."


def md(text: str) -> str:
    """Text safe in one Markdown table cell or line that reads as itself: no line breaks, no
    pipes, and no HTML tag, entity or link a viewer would act on (titles come from issues)."""
    flat = re.sub(r"&(?=#?\w+;)", r"\\&", cell(text))
    return re.sub(r"([<>\[\]])", r"\\\1", flat)


def render_markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", ""]
    for section in doc.sections:
        if section.title:
            lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _block(block)
    return "\n".join(lines)


def _block(block: Text | Bullets | Table | Images | Code) -> list[str]:
    if isinstance(block, Code):
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", block.text)), default=0))
        return [f"{fence}{block.language}", *block.text.rstrip("\n").splitlines(), fence, ""]
    if isinstance(block, Text):
        text = md(block.text)
        return [f"**{text}**" if block.strong else text, ""]
    if isinstance(block, Bullets):
        return [*(f"- {md(item)}" for item in block.items), ""] if block.items else []
    if isinstance(block, Images):
        lines = [f"![{_alt(p)}]({p.name})" for p in block.files]
        lines += [f"*{md(note)}*" for note in block.skipped]
        return [*lines, ""]
    align = ["---:" if i in block.right else "---" for i in range(len(block.head))]
    return [
        "| " + " | ".join(md(h) for h in block.head) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows),
        "",
    ]


def _cell(value: str | Link | Mark | tuple[Link, ...]) -> str:
    if isinstance(value, Link):
        return f"[{md(value.text)}]({value.href})"
    if isinstance(value, Mark):
        return ("✓ " if value.ok else "✗ ") + md(value.text)
    if isinstance(value, tuple):
        return " · ".join(_cell(link) for link in value)
    return md(value)


def _alt(path: Path) -> str:
    return path.stem.replace("_", " ")


def _ladder_chart(report: dict[str, Any], out: Path) -> list[Path]:
    """The ladders' frontier (`--ladders`), drawn where the other charts are."""
    review = report.get("ladders")
    mpl = load_matplotlib()
    if not review or not review["available"] or mpl is None:
        return []
    return [frontier_chart(mpl, review, out / FRONTIER_CHART)]


def write_report(report: dict[str, Any], out: Path, *, charts: bool = True) -> list[Path]:
    """Write report.json, report.md, report.html and (with matplotlib) the charts into `out`;
    returns their paths in that order."""
    out.mkdir(parents=True, exist_ok=True)
    pngs, notes = [], [CHARTS_OFF]
    if charts:
        drawn = draw_charts(report, out)
        pngs, notes = drawn.files, drawn.notes
        if drawn.warning:
            log.warning("%s", drawn.warning)
        pngs += _ladder_chart(report, out)
    doc = report_document(report, out, pngs, notes)
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / REPORT_MD).write_text(render_markdown(doc), encoding="utf-8")
    (out / REPORT_HTML).write_text(html_page(doc), encoding="utf-8")
    return [out / REPORT_JSON, out / REPORT_MD, out / REPORT_HTML, *pngs]
