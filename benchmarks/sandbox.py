"""Measure the Docker sandbox against its references, side by side in one run: cold open
(create + copy + start + git init) p50/p95, reset() p50, exec of `true` p50, next to a bare API
`docker exec`, the `docker exec` and `docker run --rm IMAGE true` CLIs, and a local subprocess.
On the demo repo and a generated repo of ~2,000 files. Writes results/sandbox.{json,md}.

    python benchmarks/sandbox.py [--opens 10] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a script in the checkout: use this checkout's packages

import anyio  # noqa: E402

from cascade.config import SandboxConfig  # noqa: E402
from sandboxes.docker_api import connect  # noqa: E402
from sandboxes.docker_sandbox import DockerSandbox  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {"reset_p50_s": 0.3, "exec_overhead_x": 2.0, "cold_open_2000_p50_s": 2.0}


def _git_repo(root: Path) -> Path:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "base")
    return root


def demo_repo(tmp: Path) -> Path:
    target = tmp / "demo"
    shutil.copytree(ROOT / "examples" / "demo", target, ignore=shutil.ignore_patterns(".git"))
    return _git_repo(target)


def generated_repo(tmp: Path, files: int = 2000) -> Path:
    target = tmp / "generated"
    per_package = 50
    for n in range(files):
        package = target / "src" / f"pkg{n // per_package:03d}"
        package.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def f{n}_{i}(x):\n    return x + {i}\n\n" for i in range(8))
        (package / f"mod{n % per_package:03d}.py").write_text(f'"""Module {n}."""\n\n{body}')
    return _git_repo(target)


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 4), "p95": round(p95, 4), "n": len(ordered)}


async def timed(action: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


def timed_sync(action: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


async def measure_repo(repo: Path, config: SandboxConfig, opens: int, runs: int) -> dict[str, Any]:
    files = len(subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True,
                               text=True, check=True).stdout.splitlines())  # fmt: skip
    open_samples, close_samples = [], []
    for _ in range(opens):
        started = time.perf_counter()
        box = await DockerSandbox.open(repo, "HEAD", config)
        open_samples.append(time.perf_counter() - started)
        started = time.perf_counter()
        await box.close()
        close_samples.append(time.perf_counter() - started)
    box = await DockerSandbox.open(repo, "HEAD", config)
    try:
        reset_samples = []
        for n in range(runs):
            await box.write_files({f"scratch/new{n}.py": b"x = 1\n", "README.md": b"changed\n"})
            started = time.perf_counter()
            await box.reset()
            reset_samples.append(time.perf_counter() - started)
        exec_samples = await timed(lambda: box.exec(["true"], timeout=30), runs)
        container = box._container  # the references run against the very same container
        bare_api = timed_sync(lambda: container.exec_run(["true"], user="10001"), runs)
        cli = ["docker", "exec", "-u", "10001", box.name, "true"]
        bare_cli = timed_sync(lambda: subprocess.run(cli, check=True), runs)
    finally:
        await box.close()
    return {
        "files": files,
        "cold_open_s": stats(open_samples),
        "close_s": stats(close_samples),
        "reset_s": stats(reset_samples),
        "exec_true_s": stats(exec_samples),
        "bare_api_exec_true_s": stats(bare_api),
        "docker_exec_cli_true_s": stats(bare_cli),
    }


async def main(opens: int, runs: int) -> dict[str, Any]:
    config = SandboxConfig()
    client = connect()
    image = client.images.get(config.image)
    docker_run = ["docker", "run", "--rm", "--network", "none", config.image, "true"]
    references = {
        "docker_run_rm_true_s": stats(
            timed_sync(lambda: subprocess.run(docker_run, check=True), max(3, opens // 2))
        ),
        "local_subprocess_true_s": stats(
            timed_sync(lambda: subprocess.run(["true"], check=True), runs)
        ),
        "docker_exec_cli_true_s": None,
    }
    server = client.version()
    client.close()
    with tempfile.TemporaryDirectory(prefix="cascade-bench-") as tmp:
        repos = {"demo": demo_repo(Path(tmp)), "generated-2000": generated_repo(Path(tmp))}
        measured = {name: await measure_repo(path, config, opens, runs)
                    for name, path in repos.items()}  # fmt: skip
    references["docker_exec_cli_true_s"] = measured["demo"]["docker_exec_cli_true_s"]
    big = measured["generated-2000"]
    overhead = big["exec_true_s"]["p50"] / big["bare_api_exec_true_s"]["p50"]
    return {
        "schema_version": 1,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": _cpus(), "docker": server["Version"]},
        "image": {"tag": config.image, "id": image.id},
        "repos": measured,
        "references": references,
        "checks": {
            "reset_p50_s": big["reset_s"]["p50"],
            "exec_overhead_x": round(overhead, 2),
            "cold_open_2000_p50_s": big["cold_open_s"]["p50"],
            "targets": TARGETS,
        },
    }


def _cpus() -> int:
    return os.cpu_count() or 0


def markdown(result: dict[str, Any]) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    lines = [
        "# Sandbox benchmark",
        "",
        f"{result['when']} · {result['machine']['platform']} · {result['machine']['cpus']} CPUs · "
        f"Docker {result['machine']['docker']} · image `{result['image']['id'][:19]}`",
        "",
        "| repo | files | cold open p50 | cold open p95 | reset p50 | exec `true` p50 | "
        "bare API exec p50 | `docker exec` CLI p50 | close p50 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["repos"].items():
        lines.append(
            f"| {name} | {r['files']} | {ms(r['cold_open_s']['p50'])} | "
            f"{ms(r['cold_open_s']['p95'])} | {ms(r['reset_s']['p50'])} | "
            f"{ms(r['exec_true_s']['p50'])} | {ms(r['bare_api_exec_true_s']['p50'])} | "
            f"{ms(r['docker_exec_cli_true_s']['p50'])} | {ms(r['close_s']['p50'])} |"
        )
    refs, checks = result["references"], result["checks"]
    lines += [
        "",
        f"References: `docker run --rm IMAGE true` p50 {ms(refs['docker_run_rm_true_s']['p50'])}; "
        f"local subprocess `true` p50 {ms(refs['local_subprocess_true_s']['p50'])}.",
        "",
        "| check (2,000-file repo) | measured | target |",
        "|---|---:|---:|",
        f"| reset p50 | {ms(checks['reset_p50_s'])} | ≤ {ms(TARGETS['reset_p50_s'])} |",
        f"| exec overhead vs bare exec | {checks['exec_overhead_x']}× | "
        f"≤ {TARGETS['exec_overhead_x']}× |",
        f"| cold open p50 | {ms(checks['cold_open_2000_p50_s'])} | "
        f"≤ {ms(TARGETS['cold_open_2000_p50_s'])} |",
        "",
        "## The cost of a fresh sandbox per attempt",
        "",
        "Every answer is applied and judged in a sandbox of its own (issue 14: nothing an earlier "
        "attempt left, a moved HEAD, a git filter or a process, can reach it), instead of the "
        "old reset of one shared sandbox. Per attempt that costs an open and a close instead "
        "of a reset; the engine opens the answer's sandbox while the model is still answering, "
        "so with a model call longer than the open the attempt waits only for the close.",
        "",
        "| repo | fresh sandbox (open + close p50) | old reset p50 | added per attempt "
        "(the open hidden behind the model call) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in result["repos"].items():
        fresh = r["cold_open_s"]["p50"] + r["close_s"]["p50"]
        waited = r["close_s"]["p50"] - r["reset_s"]["p50"]
        lines.append(
            f"| {name} | {ms(fresh)} | {ms(r['reset_s']['p50'])} | {ms(waited)} "
            f"(the open, {ms(r['cold_open_s']['p50'])}, overlaps a model call that long) |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--opens", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    outcome = anyio.run(main, args.opens, args.runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sandbox.json").write_text(json.dumps(outcome, indent=2) + "\n")
    (RESULTS / "sandbox.md").write_text(markdown(outcome))
    print(markdown(outcome))
