"""Time to a verified patch: `cascade fix` on the demo issues against a real loopback
OpenAI-compatible provider that answers after a fixed delay (benchmarks/fix_latency_server.py),
cold cache and warm, next to the sum of its parts measured in the same run (the model's delay, the
gate runs, the baseline, start-up). Issue #19's acceptance: only the model should make a user
wait. Writes results/fix_latency[-TAG].{json,md}.

    python benchmarks/fix_latency.py [--delay 3.0] [--repeat 3] [--issues DEMO-1,DEMO-2,DEMO-3]
        [--code DIR] [--tag before] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a script in the checkout: its helper module beside it

from benchmarks.fix_latency_server import RUNGS, ScriptedProvider, demo_titles, write_config  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ISSUES = ("DEMO-1", "DEMO-2", "DEMO-3")  # DEMO-4 has a reproduce stage: not this benchmark's
WARM_X, WARM_SLACK_S, COLD_SLACK_S, FIRST_LINE_S = 1.3, 1.0, 1.5, 1.0
_BASELINE = re.compile(r"baseline taken \((\d+(?:\.\d+)?)s\)")


def demo_repo(demo: Path, dest: Path) -> Path:
    """A copy of the demo in a fresh git repository, one commit (as examples/run-demo.sh does)."""
    shutil.copytree(demo, dest, ignore=shutil.ignore_patterns("__pycache__", "runs", "cache"))
    for args in (("init", "-q", "-b", "main"), ("add", "-A"),
                 ("-c", "user.name=demo", "-c", "user.email=demo@localhost", "commit", "-qm",
                  "demo: base")):  # fmt: skip
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True)
    return dest


class Code:
    """Which cascade runs: this checkout's console script, or `python -P -m cascade` with
    PYTHONPATH=DIR (-P: the working directory is not put ahead of it on sys.path)."""

    def __init__(self, where: Path | None) -> None:
        self.dir = where.resolve() if where else ROOT
        self.external = where is not None
        python = Path(sys.executable)
        self.argv = (
            [str(python), "-P", "-m", "cascade"] if where else [str(python.parent / "cascade")]
        )
        self.env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                    "OPENAI_API_KEY": "sk-loopback-benchmark"}  # fmt: skip
        if where:
            self.env["PYTHONPATH"] = str(self.dir)

    def describe(self) -> dict[str, Any]:
        def git(*args: str) -> str:
            argv = ["git", "-C", str(self.dir), *args]
            done = subprocess.run(argv, check=False, capture_output=True, text=True)
            return done.stdout.strip()

        probe = [sys.executable, "-P", "-c", "import cascade; print(cascade.__file__)"]
        module = subprocess.run(probe, capture_output=True, text=True, env=self.env, check=True)
        revision = git("rev-parse", "--short", "HEAD") or "(not a git checkout)"
        return {"dir": str(self.dir), "revision": revision,
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
                "module": module.stdout.strip(), "command": self.argv}  # fmt: skip

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [*self.argv, *args]
        return subprocess.run(argv, check=False, capture_output=True, text=True, env=self.env)


def fix(code: Code, repo: Path, config: Path, issue: str, timeout: float) -> dict[str, Any]:
    """One `cascade fix --json`, timed from just before Popen to exit; every stderr line stamped."""
    argv = [*code.argv, "fix", issue, "--repo", str(repo), "--config", str(config), "--json"]
    lines: list[tuple[float, str]] = []
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=code.env)  # fmt: skip

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killer = threading.Timer(timeout, proc.kill)  # not communicate(): it would read stderr too
    killer.start()
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    proc.wait()
    wall = time.perf_counter() - started
    killer.cancel()
    reader.join(timeout=5)
    try:
        outcome = json.loads(stdout)
    except json.JSONDecodeError:
        outcome = {"status": f"no outcome (exit {proc.returncode})"}
    return {"started": started, "wall_s": wall, "exit": proc.returncode, "outcome": outcome,
            "lines": lines}  # fmt: skip


def judged(run_dir: str) -> list[dict[str, Any]]:
    """Each attempt's model latency and the wall time of its judging. Attempt.duration_s is timed
    from the answer (cascade/core/draft.py: `for_sample` restarts the clock), so it is the judging;
    a record whose duration also covers the call (older code) has the call's latency taken off."""
    path = Path(run_dir) / "attempts.jsonl"
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        a = json.loads(line)
        verdicts = {v["evaluator"]: float(v.get("duration_s") or 0) for v in a.get("verdicts", ())}
        latency, duration = float(a.get("latency_s", 0)), float(a.get("duration_s", 0))
        covers = duration >= latency + sum(verdicts.values()) - 0.01 and latency > 0.05
        rows.append({"seq": a["seq"], "rung": a["rung"], "role": a.get("role", "fix"),
                     "status": a["status"], "latency_s": latency, "duration_s": duration,
                     "duration_covers_call": covers, "verdicts_s": verdicts,
                     "verdict_sum_s": round(sum(verdicts.values()), 3),
                     "gate_s": round(duration - latency if covers else duration, 3)})  # fmt: skip
    return rows


def measure(code: Code, repo: Path, config: Path, server: ScriptedProvider, *, issue: str,
            mode: str, repeat: int, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    cleared = None
    if mode == "cold":
        done = code.run("cache", "clear", "--repo", str(repo))
        cleared = done.returncode == 0  # code older than the baseline cache has none to clear
    server.take_log()
    run = fix(code, repo, config, issue, args.timeout)
    calls = server.take_log()
    t0, outcome = run.pop("started"), run["outcome"]
    attempts = judged(str(outcome.get("run_dir", "")))
    gates = [a["gate_s"] for a in attempts if a["verdicts_s"]]
    baseline = next((float(m.group(1)) for _, text in run["lines"]
                     for m in [_BASELINE.search(text)] if m), None)  # fmt: skip
    delay = args.delay * len(calls)
    wall, gate = run["wall_s"], sum(gates)
    if mode == "warm":
        bound, measured = WARM_X * gate + WARM_SLACK_S, wall - delay
    else:
        bound, measured = max(baseline or 0.0, delay) + gate + COLD_SLACK_S, wall
    first_line = run["lines"][0][0] if run["lines"] else None
    answered = max((c["answered"] - t0 for c in calls), default=None)
    return {
        "issue": issue, "mode": mode, "repeat": repeat, "status": outcome.get("status"),
        "exit": run["exit"], "cache_cleared": cleared, "wall_s": round(wall, 3),
        "first_line_s": round(first_line, 3) if first_line is not None else None,
        "model_calls": len(calls), "model_delay_s": round(delay, 3),
        "first_call_s": round(calls[0]["arrived"] - t0, 3) if calls else None,
        "after_last_answer_s": round(wall - answered, 3) if answered is not None else None,
        "calls": [{"task": c["task"], "model": c["model"], "attempt": c["attempt"],
                   "arrived_s": round(c["arrived"] - t0, 3),
                   "answered_s": round(c["answered"] - t0, 3), "error": c.get("error", "")}
                  for c in calls],
        "gate_runs_s": gates, "gate_s": round(gate, 3), "baseline_s": baseline,
        "cache_hit": any("from the cache" in text for _, text in run["lines"]),
        "wall_minus_delay_s": round(wall - delay, 3),
        "overhead_s": round(wall - delay - gate, 3), "bound_s": round(bound, 3),
        "checked_s": round(measured, 3), "met": measured <= bound,
        "attempts": attempts, "run_id": outcome.get("run_id", ""),
        "lines": [[round(t, 3), text] for t, text in run["lines"]],
    }  # fmt: skip


def median_wall(argv: list[str], env: Mapping[str, str], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=dict(env))
        samples.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(samples), 3), "min_s": round(min(samples), 3),
            "max_s": round(max(samples), 3), "n": runs}  # fmt: skip


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}  # fmt: skip


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for run in runs:
        summary.setdefault(run["issue"], {}).setdefault(run["mode"], []).append(run)
    keys = ("wall_s", "wall_minus_delay_s", "overhead_s", "model_delay_s", "gate_s", "bound_s",
            "first_line_s", "first_call_s", "after_last_answer_s", "baseline_s")  # fmt: skip
    for issue, modes in summary.items():
        for mode, rows in modes.items():
            stats: dict[str, Any] = {k: spread([r[k] for r in rows if r[k] is not None])
                     for k in keys if any(r[k] is not None for r in rows)}  # fmt: skip
            stats["met"] = f"{sum(r['met'] for r in rows)}/{len(rows)}"
            stats["first_line_met"] = (
                f"{sum((r['first_line_s'] or 99) < FIRST_LINE_S for r in rows)}/{len(rows)}"
            )
            stats["model_calls"] = rows[0]["model_calls"]
            summary[issue][mode] = stats
    return summary


def render(result: dict[str, Any]) -> str:
    p, c, s = result["parameters"], result["code"], result["summary"]

    def m(stats: Mapping[str, Any], key: str) -> str:
        got = stats.get(key)
        return f"{got['median']:.2f} s" if got else "—"

    lines = [
        "# Time to a verified patch (`cascade fix`, loopback provider)", "",
        f"{result['when']} · {result['machine']['platform']} · {result['machine']['cpus']} CPUs · "
        f"code `{c['revision']}`{' (with uncommitted changes)' if c['dirty'] else ''} "
        f"({c['module']}) · provider delay {p['delay']} s a call · median of {p['repeat']} "
        "runs (min–max for wall)", "",
        "Cold: `cascade cache clear` first; warm: the same fix again at once. Model delay = the "
        "delay × the calls the server saw in that run; gate = the sum of the attempts' judging "
        "(each attempt's `duration_s`, which starts at its answer). Bounds (per run): warm "
        f"`wall − model delay ≤ {WARM_X} × gate + {WARM_SLACK_S} s`; cold `wall ≤ max(baseline, "
        f"model delay) + gate + {COLD_SLACK_S} s`, where for a run of two calls (cheap rejected, "
        "strong verified) model delay is both calls' delays and gate both gate runs. First line: "
        f"the first stderr line (target < {FIRST_LINE_S:g} s). First call: when the server got "
        "the first request.", "",
        "| issue | mode | wall | calls | wall − delay | gate | baseline | bound (on) | met | "
        "wall − delay − gate | first line (< 1 s) | first call | after last answer |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for issue, modes in s.items():
        for mode, st in modes.items():
            on = "wall − delay" if mode == "warm" else "wall"
            wall = st["wall_s"]
            lines.append(
                f"| {issue} | {mode} | {wall['median']:.2f} s ({wall['min']:.2f}–{wall['max']:.2f})"
                f" | {st['model_calls']} | {m(st, 'wall_minus_delay_s')} | {m(st, 'gate_s')} | "
                f"{m(st, 'baseline_s')} | {m(st, 'bound_s')} ({on}) | {st['met']} | "
                f"{m(st, 'overhead_s')} | {m(st, 'first_line_s')} ({st['first_line_met']}) | "
                f"{m(st, 'first_call_s')} | "
                f"{m(st, 'after_last_answer_s')} |"
            )
    up = result["startup"]
    lines += ["", "## The parts", "",
              f"- start-up: `cascade --version` {up['cascade --version']['median_s']:.2f} s "
              f"(median of {up['cascade --version']['n']}); `python -c \"import litellm\"` "
              f"{up['import litellm']['median_s']:.2f} s (median of {up['import litellm']['n']})",
              f"- model: {p['delay']} s a call, as served (the server's own log)",
              "- baseline: the cold run's `baseline taken (X s)` line; gate runs: per attempt, "
              "below", ""]  # fmt: skip
    fixed = up["cascade --version"]["median_s"] + up["import litellm"]["median_s"]
    lines += [
        "Against the sum of its parts (model delay + gate runs + start-up, litellm's import "
        "counted in start-up: a run cannot call a model before it):",
        "",
        "| issue | mode | wall | sum of parts | wall ÷ sum |",
        "|---|---|---:|---:|---:|",
    ]
    for issue, modes in s.items():
        for mode, st in modes.items():
            total = st["model_delay_s"]["median"] + st["gate_s"]["median"] + fixed
            wall = st["wall_s"]["median"]
            ratio = wall / total
            lines.append(f"| {issue} | {mode} | {wall:.2f} s | {total:.2f} s | {ratio:.2f} |")
    lines.append("")
    shown = [
        r for r in result["runs"] if r["issue"] == p["issues"][0] and r["repeat"] == p["repeat"]
    ]
    for run in shown:
        lines += [f"### {run['issue']} {run['mode']} (repeat {run['repeat']}): where the time "
                  f"goes — wall {run['wall_s']:.2f} s, gate runs "
                  f"{', '.join(f'{g:.2f}' for g in run['gate_runs_s'])} s", "", "```"]  # fmt: skip
        events = [(t, f"stderr  {text[:110]}") for t, text in run["lines"]]
        for call in run["calls"]:
            events.append((call["arrived_s"], f"server  request {call['model']} {call['task']}"))
            events.append((call["answered_s"], f"server  answered {call['model']}"))
        lines += [f"{t:7.2f}s  {text}" for t, text in sorted(events, key=lambda e: e[0])]
        lines += [f"{run['wall_s']:7.2f}s  exit {run['exit']}", "```", ""]
    lines += ["## Reproduce", "", "```", result["command"], "```", ""]
    if result["failures"]:
        lines += ["## FAILURES", "", *[f"- {f}" for f in result["failures"]], ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--delay", type=float, default=3.0, help="seconds before each answer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--issues", default=",".join(ISSUES), help="comma-separated demo ids")
    parser.add_argument("--code", type=Path, help="another checkout of cascade to run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results folder")
    parser.add_argument("--tag", default="", help="suffix of the result files' names")
    parser.add_argument("--timeout", type=float, default=600.0, help="per cascade fix run")
    args = parser.parse_args()
    code = Code(args.code)
    issues = [i.strip() for i in args.issues.split(",") if i.strip()]
    demo = code.dir / "examples" / "demo"  # the demo the code it runs knows how to read
    server = ScriptedProvider(demo / "cassettes" / "demo.jsonl",
                              demo_titles(demo / ".cascade" / "issues"), args.delay)  # fmt: skip
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cascade-fix-latency-") as tmp:
        port = server.start()
        try:
            repo = demo_repo(demo, Path(tmp) / "demo")
            config = write_config(demo, port, Path(tmp) / "cascade.toml")
            described = code.describe()
            startup = {
                "cascade --version": median_wall([*code.argv, "--version"], code.env, 5),
                "import litellm": median_wall(
                    [sys.executable, "-c", "import litellm"], code.env, 3
                ),
            }
            for repeat in range(1, args.repeat + 1):
                for issue in issues:
                    for mode in ("cold", "warm"):
                        run = measure(
                            code,
                            repo,
                            config,
                            server,
                            issue=issue,
                            mode=mode,
                            repeat=repeat,
                            args=args,
                        )
                        print(
                            f"{issue} {mode} #{repeat}: {run['status']} wall {run['wall_s']:.2f}s "
                            f"calls {run['model_calls']} gate {run['gate_s']:.2f}s "
                            f"bound {run['bound_s']:.2f}s met {run['met']}",
                            file=sys.stderr,
                        )
                        runs.append(run)
        finally:
            server.stop()
    failures = [f"{r['issue']} {r['mode']} #{r['repeat']}: status {r['status']!r} (exit "
                f"{r['exit']}), not verified; stderr: {' | '.join(t for _, t in r['lines'][-6:])}"
                for r in runs if r["status"] != "verified"]  # fmt: skip
    command = " ".join(["LITELLM_LOCAL_MODEL_COST_MAP=True", ".venv/bin/python",
                        "benchmarks/fix_latency.py", *map(shlex.quote, sys.argv[1:])])  # fmt: skip
    result = {
        "schema_version": 1, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count() or 0,
                    "python": platform.python_version()},
        "parameters": {"delay": args.delay, "repeat": args.repeat, "issues": issues,
                       "timeout": args.timeout, "rungs": RUNGS, "demo": str(demo)},
        "code": described, "startup": startup, "command": command,
        "targets": {"warm_x_gate": WARM_X, "warm_slack_s": WARM_SLACK_S,
                    "cold_slack_s": COLD_SLACK_S, "first_line_s": FIRST_LINE_S},
        "summary": summarize(runs), "failures": failures,
        "runs": runs,
    }  # fmt: skip
    suffix = f"-{args.tag}" if args.tag else ""
    args.out.mkdir(parents=True, exist_ok=True)
    text = render(result)
    (args.out / f"fix_latency{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"fix_latency{suffix}.md").write_text(text)
    print(text)
    for failure in failures:
        print(f"BENCHMARK FAILURE: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
