"""Start-up of the `cascade` command against its reference, side by side in one run: the median
wall time of `cascade --help`, `cascade --version` and `cascade config show` (on the bundled
demo) next to `python -c "import typer"` — the least any typer command line costs — run
alternately so a busy machine slows both alike. Issue #19's target: --help, --version and config
show within 2x the typer import. Writes results/startup.{json,md}.

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a script in the checkout: use this checkout's packages

from cascade.testing.demo import demo_repo  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TARGET_X = 2.0
CASCADE = str(Path(sys.executable).parent / "cascade")


def _wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ})
    return time.perf_counter() - started


def measure(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        demo = demo_repo(ROOT / "examples" / "demo", Path(tmp) / "demo")
        commands = {
            "import typer": [sys.executable, "-c", "import typer"],
            "cascade --help": [CASCADE, "--help"],
            "cascade --version": [CASCADE, "--version"],
            "cascade config show": [CASCADE, "config", "show", "--repo", str(demo)],
        }
        for argv in commands.values():  # warm the file cache once
            _wall(argv)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                times[name].append(_wall(argv))
    base = statistics.median(times["import typer"])
    rows = {
        name: {
            "median_s": round(statistics.median(ts), 4),
            "x_typer": round(statistics.median(ts) / base, 2),
        }
        for name, ts in times.items()
    }
    return {
        "runs": runs,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "target_x_typer": TARGET_X,
        "rows": rows,
        "met": {
            name: row["x_typer"] <= TARGET_X for name, row in rows.items() if name != "import typer"
        },
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        "# cascade start-up",
        "",
        f"Median of {result['runs']} runs each, alternated; Python {result['python']}, "
        f"{result['cpus']} CPUs. Target: within {result['target_x_typer']}x `import typer`.",
        "",
        "| command | median | × import typer | target met |",
        "|---|---:|---:|---|",
    ]
    for name, row in result["rows"].items():
        met = "—" if name == "import typer" else ("yes" if result["met"][name] else "no")
        lines.append(f"| `{name}` | {row['median_s']:.3f} s | {row['x_typer']:.2f} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    result = measure(args.runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    text = render(result)
    (RESULTS / "startup.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
