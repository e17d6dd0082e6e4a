"""The report a team lead reads, on a real replay of the demo with an always-strongest shadow: the
headline (baselines, n, a 95% interval, versions, where prices came from), charts of a fixed
width, tasks linked to their summaries and patches with each run's proof status, the
self-contained report.html (rendered by a real headless Chromium), and `cascade report
compare A B`. One demo issue's title is hostile HTML: it must never reach a page unescaped."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.report.headline import money, wilson_interval
from cascade.testing.demo import demo_backlog

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
HOSTILE = "<script>alert(1)</script>"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six demo tasks (DEMO-1..3, two copies), every cheap answer without edits, replayed with an
    always-strongest shadow; DEMO-1-c1's title carries a script tag."""
    root = tmp_path_factory.mktemp("views")
    b = demo_backlog(
        DEMO, root / "b", copies=2, gate='["diff_scope", "pytest"]', cheap_without_edits=True,
        focus_only=True, issues=("DEMO-1", "DEMO-2", "DEMO-3"),
    )  # fmt: skip
    lines = [json.loads(line) for line in b.backlog.read_text().splitlines()]
    lines[0]["title"] = f"Amounts {HOSTILE} & <b>bold</b>"
    b.backlog.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = root / "batch"
    code, _, err = run(
        "replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config),
        "--out", str(out), "--sandbox", "local", "--concurrency", "3",
        "--shadow", "strongest",
    )  # fmt: skip
    assert code == 0, err
    return out


def report_of(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "report.json").read_text())
    return data


def test_the_headline_against_always_strongest_with_n_and_interval(batch: Path) -> None:
    report = report_of(batch)
    rows = {b["name"]: b for b in report["baselines"]}
    strongest = rows["always strongest rung (strong)"]
    assert strongest["available"] and strongest["kind"] == "shadow"
    n, verified = report["tasks"]["total"], report["tasks"]["verified"]
    assert (n, verified) == (6, 6)
    lo, hi = wilson_interval(verified, n) or (0, 0)
    headline = report["headline"]
    assert headline["ci95"] == [lo, hi] and headline["n"] == 6
    expected = (
        f"6/6 verified for {money(report['cost']['total_usd'])} (100% of n = 6 tasks; "
        f"95% interval {lo:.0%}–{hi:.0%}); always-strongest would have cost "
        f"{money(strongest['cost_usd'])} for the same 6/6"
    )
    assert headline["text"].startswith(expected)
    assert "the cheap rung verified nothing here" in headline["text"]
    md = (batch / "report.md").read_text()
    assert md.splitlines()[2] == f"**{headline['text']}**"  # first, right under the title
    # Versions and where each rung's prices came from (the demo prices both rungs itself).
    p = report["provenance"]
    assert p["cascade_version"] == version("cascade-engine")
    assert p["litellm_version"] == version("litellm")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", p["generated_at"])
    prices = {row["rung"]: row for row in p["prices"]}
    assert prices["cheap"]["source"] == prices["strong"]["source"] == "configured"
    assert prices["cheap"]["input_usd_per_mtok"] == pytest.approx(0.15)
    assert prices["strong"]["output_usd_per_mtok"] == pytest.approx(10.0)
    assert prices["cheap"]["where"].endswith("replay.toml")
    assert f"by cascade {version('cascade-engine')} (litellm {version('litellm')})" in md
    assert "cheap, strong: configured per rung in replay.toml" in md
    # No raw JSON in the prose: only table rows may hold braces (none should), never a paragraph.
    prose = [line for line in md.splitlines() if not line.startswith("|")]
    assert not [line for line in prose if "{" in line or "}" in line]


def _links(md: str) -> dict[str, list[str]]:
    """Task id -> the link targets in its row of the Tasks table."""
    table = md.split("## Tasks", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| DEMO-")]
    return {row.split(" | ")[0][2:]: re.findall(r"\]\(([^)]+)\)", row) for row in rows}


@pytest.mark.parametrize("elsewhere", [False, True], ids=["in the batch", "--out elsewhere"])
def test_tasks_link_to_their_summary_and_patch(
    batch: Path, tmp_path: Path, elsewhere: bool
) -> None:
    out = tmp_path / "elsewhere" if elsewhere else batch
    if elsewhere:
        code, _, err = run("report", str(batch), "--out", str(out), "--no-charts")
        assert code == 0, err
    links = _links((out / "report.md").read_text())
    assert len(links) == 6
    for task, targets in links.items():
        names = sorted(Path(t).name for t in targets)
        assert names == ["patch.diff", "summary.md"], task
        for target in targets:
            assert not Path(target).is_absolute()
            resolved = (out / unquote(target)).resolve()
            assert resolved.is_file() and resolved.parent.parent == batch / "runs", target
            assert resolved.parent.name.startswith(task)
    html = (out / "report.html").read_text()
    for targets in links.values():
        for target in targets:
            assert f'href="{target}"' in html


def test_charts_are_fixed_width_aggregates_with_the_shadow_on_one_axis(batch: Path) -> None:
    pngs = sorted(p.name for p in batch.glob("*.png"))
    assert pngs == [
        "cascade_vs_baselines.png", "cost_per_verified_by_rung.png",
        "verified_by_label_and_rung.png",
    ]  # fmt: skip
    for name in pngs:
        width, height = png_size(batch / name)
        assert width == 800 and height < 2000, name
        assert (batch / name).stat().st_size > 10_000, f"{name} looks empty"
    md = (batch / "report.md").read_text()
    assert "![cascade vs baselines](cascade_vs_baselines.png)" in md


def test_without_a_shadow_the_baseline_chart_is_missing_and_says_why(
    batch: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "batch"
    shutil.copytree(batch, copy, ignore=shutil.ignore_patterns("shadow", "*.png", "report.*"))
    code, _, err = run("report", str(copy))
    assert code == 0, err
    assert not (copy / "cascade_vs_baselines.png").exists()
    assert (copy / "cost_per_verified_by_rung.png").is_file()
    md = (copy / "report.md").read_text()
    assert "*Not drawn: the cascade against a shadow baseline" in md
    assert "always-strongest was not measured (replay with --shadow strongest)" in md


def test_charts_skipped_without_matplotlib_say_so(
    batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib` now raises
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "no-charts"
    code, _, err = run("report", str(batch), "--out", str(out))
    assert code == 0, err
    assert "matplotlib is not installed" in err and "cascade-engine[charts]" in err
    assert not list(out.glob("*.png"))
    assert "*Charts skipped: matplotlib is not installed" in (out / "report.md").read_text()
    assert "Charts skipped: matplotlib is not installed" in (out / "report.html").read_text()


def test_report_html_is_self_contained_escaped_and_shows_each_proof(batch: Path) -> None:
    html = (batch / "report.html").read_text()
    assert HOSTILE not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script" not in html.lower()  # the page runs nothing
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # fetches nothing
    assert "<link" not in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) == 3 and all(s.startswith("data:image/png;base64,") for s in images)
    rows = re.findall(r"<tr>(.*?)</tr>", html.split('id="tasks-table"')[1].split("</table>")[0])
    assert len(rows) == 1 + 6  # the head and one row a task
    for row in rows[1:]:
        assert '<span class="ok">✓ intact, unsigned</span>' in row
    # The Markdown keeps the title as text, in one table cell.
    md = (batch / "report.md").read_text()
    assert HOSTILE not in md  # raw HTML would be acted on by a Markdown viewer
    assert "| Amounts \\<script\\>alert(1)\\</script\\> & \\<b\\>bold\\</b\\> |" in md


def test_a_broken_run_shows_in_its_row(batch: Path, tmp_path: Path) -> None:
    copy = tmp_path / "batch"
    shutil.copytree(batch, copy, ignore=shutil.ignore_patterns("*.png", "report.*"))
    victim = sorted((copy / "runs").iterdir())[0]
    log = victim / "attempts.jsonl"
    log.write_text(log.read_text().replace('"cost_usd":', '"cost_usd": 0.0, "x":', 1))
    code, _, err = run("report", str(copy), "--no-charts")
    assert code == 0, err
    report = report_of(copy)
    proofs = {r["run_id"]: r["proof"] for r in report["task_rows"]}
    assert proofs.pop(victim.name)["ok"] is False
    assert all(p["ok"] for p in proofs.values())
    html = (copy / "report.html").read_text()
    assert html.count('<span class="bad">✗ broken: ') == 1
    assert "✗ broken: " in (copy / "report.md").read_text()


def _browser() -> str:
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if found is None and os.environ.get("CI"):
        pytest.fail("chromium is not installed (make browser)", pytrace=False)
    if found is None:
        pytest.skip("BROWSER TEST SKIPPED: chromium is not installed (make browser)")
    return found


PROBE = """<script>addEventListener("load", () => {
  document.body.dataset.images = [...document.images]
    .map(i => i.complete + ":" + i.naturalWidth + "x" + i.naturalHeight).join(",");
});</script></body>"""


def test_report_html_renders_in_headless_chromium(batch: Path, tmp_path: Path) -> None:
    browser = _browser()
    # A copy with a probe that records, once the page has loaded, what each image decoded to.
    page = tmp_path / "report.html"
    page.write_text((batch / "report.html").read_text().replace("</body>", PROBE))
    argv = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
            "--dump-dom", page.as_uri()]  # fmt: skip
    # A page that ran a script's alert() would hang the browser: the timeout ends that case.
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    dom = result.stdout
    assert result.returncode == 0 and "</html>" in dom, result.stderr[-2000:]
    decoded = re.search(r'data-images="([^"]*)"', dom)
    assert decoded, "the page's load event never came"
    sizes = [(int(w), int(h)) for w, h in re.findall(r"true:(\d+)x(\d+)", decoded.group(1))]
    assert len(sizes) == 3 and all(w == 800 and h >= 300 for w, h in sizes), decoded.group(1)
    headline = report_of(batch)["headline"]["text"]
    assert re.sub(r"\s+", " ", headline.replace("&", "&amp;")) in dom
    table = dom.split('id="tasks-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 6
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and HOSTILE not in dom


def test_compare_a_batch_with_its_shadow(batch: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    shadow = batch / "shadow" / "strongest-strong"
    code, stdout, err = run("report", "compare", str(batch), str(shadow), "--out", str(out))
    assert code == 0, err
    assert stdout.startswith("# Comparison of two replay batches")
    c = json.loads((out / "comparison.json").read_text())
    a, b = report_of(batch), json.loads(json.dumps(c["batches"]["B"]))
    assert c["batches"]["A"]["cost_usd"] == a["cost"]["total_usd"]
    strongest = next(r for r in a["baselines"] if r["name"] == "always strongest rung (strong)")
    assert b["cost_usd"] == strongest["cost_usd"] and b["ladder"] == ["strong"]
    assert c["shared_tasks"] == 6 and c["differing"] == [] and c["mcnemar_p"] == 1.0
    change = b["cost_usd"] / a["cost"]["total_usd"] - 1
    said = f"B cost {abs(change):.0%} {'more' if change > 0 else 'less'}"
    assert said in c["headline"] and "both verified the same ones" in c["headline"]
    assert png_size(out / "comparison.png")[0] == 800
    md = (out / "comparison.md").read_text()
    assert "| ladder | cheap → strong | strong |  |" in md
    html = (out / "comparison.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html.lower()
    code, _, err = run("report", "compare", str(batch), str(batch), "--out", str(out))
    assert code == 2 and "given twice" in err


def test_report_help_documents_compare_and_html() -> None:
    code, stdout, _ = run("report", "--help")
    assert code == 0
    assert "cascade report compare A B --out C" in " ".join(stdout.split())
    assert "report.html" in stdout
