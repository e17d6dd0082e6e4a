"""PNG charts of a report, each a fixed 800 px wide whatever the batch's size: aggregates, never
one bar per task — cost per verified patch by rung, the cascade against the baselines it could
measure (drawn only when a shadow run measured one), verified share by label × rung. matplotlib
is optional (the `charts` extra): without it there are no charts, and a note and a warning say so.
Figures are built without pyplot, so nothing global (backend, open figures) is touched."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.report.headline import money, wilson_interval

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.5, 100  # 800 x 450 px
MAX_LABELS = 12  # the heatmap shows the largest labels; the title says how many are left out
COST_CHART = "cost_per_verified_by_rung.png"
BASELINE_CHART = "cascade_vs_baselines.png"
LABEL_CHART = "verified_by_label_and_rung.png"
MISSING = (
    "Charts skipped: matplotlib is not installed "
    "(pip install 'cascade-engine[charts]' to draw them)."
)
NO_SHADOW = (
    "Not drawn: the cascade against a shadow baseline — no shadow run covers this batch "
    "(replay with --shadow strongest to measure always-strongest)."
)
MARKERS = {"cascade": "o", "shadow": "s", "derived": "^"}


@dataclass(frozen=True)
class ChartSet:
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # charts not drawn, and why
    warning: str = ""  # for the log: every chart skipped for a reason the user can fix


@dataclass(frozen=True)
class Matplotlib:
    figure: Any  # matplotlib.figure (imported by name: optional, and loosely typed here)
    ticker: Any
    colormaps: Any


def load_matplotlib() -> Matplotlib | None:
    try:
        # matplotlib itself first: a missing (or disabled) package refuses here, even when a
        # submodule is already imported.
        root = importlib.import_module("matplotlib")
        figure = importlib.import_module("matplotlib.figure")
        ticker = importlib.import_module("matplotlib.ticker")
    except ImportError:
        return None
    return Matplotlib(figure, ticker, root.colormaps)


def new_axes(mpl: Matplotlib, height: float = HEIGHT_IN, columns: int = 1) -> tuple[Any, Any]:
    fig = mpl.figure.Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(1, columns)


def usd_axis(mpl: Matplotlib, axis: Any) -> None:
    axis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _pos: money(value)))


def count_axis(mpl: Matplotlib, axis: Any) -> None:
    axis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))


def draw_charts(report: dict[str, Any], out: Path) -> ChartSet:
    mpl = load_matplotlib()
    if mpl is None:
        return ChartSet(notes=[MISSING], warning=MISSING)
    if not report["task_rows"]:
        return ChartSet(notes=["Charts skipped: no task has finished."])
    files = [cost_by_rung(mpl, report, out / COST_CHART)]
    notes = []
    points = strategy_points(report)
    if any(kind == "shadow" for *_, kind in points):
        files.append(against_baselines(mpl, report, points, out / BASELINE_CHART))
    else:
        (out / BASELINE_CHART).unlink(missing_ok=True)  # an older report's, now untrue
        notes.append(NO_SHADOW)
    files.append(labels_by_rung(mpl, report, out / LABEL_CHART))
    return ChartSet(files, notes)


def cost_by_rung(mpl: Matplotlib, report: dict[str, Any], path: Path) -> Path:
    """Each rung's spend divided by the verified patches: the bars of the rungs add up to the
    cost of one verified patch (or, with none verified, what each rung spent)."""
    rungs, verified = report["rungs"], report["tasks"]["verified"]
    total = report["cost"]["total_usd"]
    names = [name[:24] for name in rungs] + ["all rungs"]
    spend = [r["cost_usd"] for r in rungs.values()] + [total]
    fig, ax = new_axes(mpl)
    if verified:
        values = [s / verified for s in spend]
        ax.set_ylabel("USD per verified patch")
        ax.set_title(
            f"Cost per verified patch: {money(total / verified)} "
            f"({verified} verified of {report['tasks']['total']} tasks)"
        )
        ax.set_xlabel("each rung's spend ÷ verified patches (the rungs add up to 'all rungs')")
    else:
        values = spend
        ax.set_ylabel("USD spent")
        ax.set_title("No verified patch: what each rung spent")
    colors = [f"C{i % 10}" for i in range(len(rungs))] + ["0.35"]
    bars = ax.bar(names, values, color=colors)
    texts = [
        f"{money(v)} · verified {r['verified']}"
        for v, r in zip(values[:-1], rungs.values(), strict=True)
    ]
    ax.bar_label(bars, labels=[*texts, money(values[-1])], padding=3, fontsize="small")
    strongest = _strongest(report)
    if verified and strongest is not None and strongest.get("per_verified_usd") is not None:
        ax.axhline(strongest["per_verified_usd"], color="black", linestyle="--", linewidth=1,
                   label=f"{strongest['name']}: {money(strongest['per_verified_usd'])} "
                   "per verified patch")  # fmt: skip
        ax.legend(loc="upper left", fontsize="small")
    usd_axis(mpl, ax.yaxis)
    ax.margins(y=0.2)
    if len(names) > 5:
        ax.tick_params(axis="x", labelrotation=30)
    fig.savefig(path)
    return path


def strategy_points(report: dict[str, Any]) -> list[tuple[str, int, float, str]]:
    """(name, verified, cost, kind) of every strategy measured on all of the batch's tasks."""
    n = report["tasks"]["total"]
    return [
        (row["name"], row["verified"], row["cost_usd"], row.get("kind", ""))
        for row in report["baselines"]
        if row["available"] and row["tasks"] == n
    ]


def plot_points(
    mpl: Matplotlib, ax: Any, points: list[tuple[str, int, float, str]], n: int, prefix: str = ""
) -> None:
    """Verified count (with its 95% Wilson interval) against cost, one marker per strategy."""
    for name, verified, cost, kind in points:
        lo, hi = wilson_interval(verified, n) or (0.0, 0.0)
        ax.errorbar(
            [cost], [verified], yerr=[[verified - lo * n], [hi * n - verified]],
            fmt=MARKERS.get(kind, "D"), capsize=4, markersize=8,
            label=f"{prefix}{name}: {verified}/{n} for {money(cost)}",
        )  # fmt: skip
    count_axis(mpl, ax.yaxis)
    usd_axis(mpl, ax.xaxis)
    pad = max(0.5, 0.03 * n)
    ax.set_ylim(-pad, n + pad)
    ax.set_xlim(left=0, right=max((p[2] for p in points), default=0.0) * 1.15 or 1.0)
    ax.set_xlabel("total cost (USD)")
    ax.set_ylabel(f"verified tasks (of {n})")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")


def against_baselines(
    mpl: Matplotlib, report: dict[str, Any], points: list[tuple[str, int, float, str]], path: Path
) -> Path:
    fig, ax = new_axes(mpl)
    plot_points(mpl, ax, points, report["tasks"]["total"])
    ax.set_title("The cascade against its measured baselines (bars: 95% interval)")
    fig.savefig(path)
    return path


def labels_by_rung(mpl: Matplotlib, report: dict[str, Any], path: Path) -> Path:
    """Rows: labels (the largest MAX_LABELS); columns: the rung that verified, then 'not
    verified'; each cell the share of the label's tasks, with the counts written in it."""
    ranked = sorted(report["labels"].items(), key=lambda item: (-item[1]["tasks"], item[0]))
    shown = ranked[:MAX_LABELS]
    rungs = list(report["rungs"])
    columns = [*(r[:18] for r in rungs), "not verified"]
    greens, greys = mpl.colormaps["Greens"], mpl.colormaps["Greys"]
    fig, ax = new_axes(mpl, height=max(3.0, 1.6 + 0.45 * len(shown)))
    colours, texts = [], []
    for _name, row in shown:
        n = row["tasks"]
        counts = [row["verified_by_rung"].get(rung, 0) for rung in rungs]
        counts.append(n - row["verified"])
        shares = [c / n if n else 0.0 for c in counts]
        colours.append(
            [greens(0.1 + 0.8 * s) for s in shares[:-1]] + [greys(0.1 + 0.6 * shares[-1])]
        )
        texts.append([(f"{s:.0%}\n{c}/{n}", s) for s, c in zip(shares, counts, strict=True)])
    ax.imshow(colours, aspect="auto")
    for y, row_texts in enumerate(texts):
        for x, (text, value) in enumerate(row_texts):
            dark = value > 0.55
            ax.text(x, y, text, ha="center", va="center", fontsize="small",
                    color="white" if dark else "black")  # fmt: skip
    # White lines between the cells.
    ax.set_xticks([x - 0.5 for x in range(1, len(columns))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(shown))], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.set_xticks(range(len(columns)), labels=columns)
    ax.set_yticks(
        range(len(shown)), labels=[f"{name[:28]} (n={row['tasks']})" for name, row in shown]
    )
    left_out = len(ranked) - len(shown)
    more = f" — the {len(shown)} largest of {len(ranked)} labels" if left_out else ""
    ax.set_title(f"Verified share by label and rung{more}")
    ax.set_xlabel("rung that verified the task (a task counts under each of its labels)")
    fig.savefig(path)
    return path


def _strongest(report: dict[str, Any]) -> dict[str, Any] | None:
    ladder = report["ladder"]
    name = f"always strongest rung ({ladder[-1]})" if ladder else ""
    return next((b for b in report["baselines"] if b["name"] == name and b["available"]), None)
