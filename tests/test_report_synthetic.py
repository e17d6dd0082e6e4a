"""The report at scale, on a synthetic 1,000-task batch (the data objects a batch folder is read
into): the charts keep their fixed width (a per-task chart of 1,400 tasks was 70,000 px wide),
the headline states n and a tighter interval, a comparison of two large batches finds the tasks
that differ; and the statistics the report states, checked against known values."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from cascade.report.charts import count_axis, load_matplotlib, plot_points
from cascade.report.compare import mcnemar_exact
from cascade.report.comparison import write_comparison
from cascade.report.headline import wilson_interval
from cascade.report.numbers import build_report
from cascade.report.provenance import provenance
from cascade.report.render import write_report
from tests.report_synthetic import synthetic_batch


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


@pytest.fixture(scope="module")
def big() -> dict[str, Any]:
    return build_report(synthetic_batch(1000))


def test_a_thousand_tasks_keep_the_charts_small(big: dict[str, Any], tmp_path: Path) -> None:
    written = write_report(big, tmp_path)
    pngs = [p for p in written if p.suffix == ".png"]
    assert sorted(p.name for p in pngs) == [
        "cascade_vs_baselines.png", "cost_per_verified_by_rung.png",
        "verified_by_label_and_rung.png",
    ]  # fmt: skip
    for png in pngs:
        width, height = png_size(png)
        assert width < 2000 and height < 2000, (png.name, width, height)
    # 30 labels: the heatmap keeps the 12 largest, and its title says so.
    md = (tmp_path / "report.md").read_text()
    assert md.count("\n| SYN-") == 1000  # every task is still listed, in the table
    html = (tmp_path / "report.html").read_text()
    table = html.split('id="tasks-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 1000


def test_the_headline_states_n_and_the_interval_at_scale(big: dict[str, Any]) -> None:
    n, verified = big["tasks"]["total"], big["tasks"]["verified"]
    lo, hi = wilson_interval(verified, n) or (0.0, 0.0)
    text = big["headline"]["text"]
    assert n == 1000 and f"of n = 1000 tasks; 95% interval {lo:.1%}–{hi:.1%})" in text
    assert hi - lo < 0.06  # n = 1000 earns a narrow interval, and one decimal
    strongest = next(b for b in big["baselines"] if b["name"].startswith("always strongest"))
    assert f"for {strongest['verified']}/1000" in text  # not "the same": the shadow differs
    for rung in ("local", "cheap"):
        said = f"the {rung} rung verified {big['rungs'][rung]['verified']} of the {verified}"
        assert said in text


def test_without_a_shadow_the_headline_says_how_to_measure_it() -> None:
    report = build_report(synthetic_batch(40, shadow=False))
    assert (
        "always-strongest was not measured (replay with --shadow strongest)"
        in (report["headline"]["text"])
    )
    assert "n = 40 tasks" in report["headline"]["text"]


def test_compare_two_large_batches(big: dict[str, Any], tmp_path: Path) -> None:
    other = build_report(synthetic_batch(1000, seed=5, ladder=("cheap", "strong")))
    written = write_comparison(big, other, tmp_path)
    assert [p.name for p in written] == [
        "comparison.json", "comparison.md", "comparison.html", "comparison.png",
    ]  # fmt: skip
    c = json.loads((tmp_path / "comparison.json").read_text())
    a_rows = {r["task"]: r["status"] for r in big["task_rows"]}
    b_rows = {r["task"]: r["status"] for r in other["task_rows"]}
    only_a = sorted(t for t in a_rows if a_rows[t] == "verified" != b_rows[t])
    only_b = sorted(t for t in a_rows if b_rows[t] == "verified" != a_rows[t])
    assert c["verified_only_in_a"] == only_a and c["verified_only_in_b"] == only_b
    assert c["mcnemar_p"] == mcnemar_exact(len(only_a), len(only_b)) < 0.05
    assert f"{len(only_a)} verified only in A and {len(only_b)} only in B" in c["headline"]
    assert "unlikely to be chance" in c["headline"]
    width, height = png_size(tmp_path / "comparison.png")
    assert width < 2000 and height < 2000
    md = (tmp_path / "comparison.md").read_text()
    assert "## Tasks whose outcome differs" in md
    assert f"…and {len(c['differing']) - 200} more" in md  # the JSON keeps them all


def test_count_axes_show_whole_numbers() -> None:
    mpl = load_matplotlib()
    assert mpl is not None, "matplotlib is part of the dev extra"
    fig = mpl.figure.Figure()
    ax = fig.subplots()
    plot_points(mpl, ax, [("cascade", 1, 0.01, "cascade"), ("shadow", 2, 0.02, "shadow")], 3)
    ticks = [t for t in ax.get_yticks() if -0.5 <= t <= 3.5]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    fig, ax = mpl.figure.Figure(), None
    ax = fig.subplots()
    ax.plot([0, 1], [0, 2.5])
    count_axis(mpl, ax.yaxis)
    assert all(float(t).is_integer() for t in ax.get_yticks())


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table II (the
# Wilson score method), and the 0/10, 5/10 and n/n cases every table of it lists.
@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [(81, 263, (0.2553, 0.3662)), (15, 148, (0.0624, 0.1605)), (0, 20, (0.0, 0.1611)),
     (1, 29, (0.0061, 0.1718)), (0, 10, (0.0, 0.2775)), (5, 10, (0.2366, 0.7634)),
     (8, 8, (0.6756, 1.0))],
)  # fmt: skip
def test_wilson_interval_matches_known_values(
    k: int, n: int, expected: tuple[float, float]
) -> None:
    lo, hi = wilson_interval(k, n) or (-1.0, -1.0)
    assert lo == pytest.approx(expected[0], abs=1e-4) and hi == pytest.approx(expected[1], abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_mcnemar_exact_matches_the_binomial_test() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == 0.0625  # 2 * (1/2)^5
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9) == round(2 * 11 / 1024, 4)
    assert mcnemar_exact(3, 3) == 1.0


def test_prices_name_where_they_came_from(tmp_path: Path) -> None:
    config = tmp_path / "cascade.toml"
    config.write_text(
        '[[ladder]]\nname = "own"\nmodel = "replay/x"\ninput_cost_per_token = 0.000001\n'
        'output_cost_per_token = 0.000002\n\n[[ladder]]\nname = "mapped"\n'
        'model = "openai/gpt-4o-mini"\n\n[[ladder]]\nname = "taped"\nmodel = "replay/y"\n'
    )
    import litellm

    models = {"own": "replay/x", "mapped": "openai/gpt-4o-mini", "taped": "replay/y"}
    p = provenance(["own", "mapped", "taped"], models, [str(config)])
    prices = {row["rung"]: row for row in p["prices"]}
    assert prices["own"]["source"] == "configured" and prices["own"]["where"] == str(config)
    assert prices["own"]["input_usd_per_mtok"] == pytest.approx(1.0)
    mapped = prices["mapped"]
    assert mapped["source"] == "litellm" and mapped["where"] == "litellm's local cost map"
    expected = litellm.model_cost["gpt-4o-mini"]["input_cost_per_token"] * 1_000_000
    assert mapped["input_usd_per_mtok"] == pytest.approx(expected)
    assert prices["taped"]["input_usd_per_mtok"] is None
    assert "no entry for replay/y: priced $0" in prices["taped"]["where"]
    gone = provenance(["own"], models, [str(tmp_path / "gone.toml")])["prices"][0]
    assert gone["source"] == "unknown" and "cannot be read now" in gone["where"]
