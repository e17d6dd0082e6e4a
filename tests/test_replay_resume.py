"""Resumable, losing nothing: a real `cascade replay` subprocess is killed with SIGKILL several
times at random points while tasks are in flight, then run to the end with the same command.
The ledger and the run folders must then account for every task and every attempt exactly
once: finished tasks were skipped, cut-short runs are marked aborted (kept, not deleted), a
torn ledger line was repaired, and every finished run's proof verifies."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from cascade.proof.run_folder import RunFolder
from cascade.proof.verify import verify_run
from cascade.replay.batch import ABORTED_FILE, LEDGER_FILE, RUNS_DIR
from cascade.replay.ledger import read_jsonl, read_ledger
from cascade.testing.demo import demo_backlog

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
CASCADE = str(Path(sys.executable).parent / "cascade")
KILLS = 3
COPIES = 4  # of each of the 3 demo issues that name their tests (DEMO-4 writes one first)
NAMED = ("DEMO-1", "DEMO-2", "DEMO-3")
TORN = b'{"event":"done","task":"DEMO-1-c1","run_id":"DEMO-1-c1.r9","outc'


def _progress(out: Path) -> dict[str, int]:
    """How far the batch has got: tasks started and finished, attempt records written."""
    ledger = out / LEDGER_FILE
    raw = ledger.read_bytes() if ledger.exists() else b""
    records = sum(p.read_bytes().count(b"\n") for p in out.glob(f"{RUNS_DIR}/*/attempts.jsonl"))
    return {
        "start": raw.count(b'"event":"start"'),
        "attempt": records,
        "done": raw.count(b'"event":"done"'),
    }


def test_sigkill_at_random_points_then_resume_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("CASCADE_KILL_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    why = f"(random seed {seed}; rerun with CASCADE_KILL_SEED={seed})"
    # 12 tasks, 2 model calls each, 0.25 s per answer, 2 at a time: ~4 s of work to cut into.
    b = demo_backlog(DEMO, tmp_path / "b", copies=COPIES, latency_s=0.25,
                     gate='["diff_scope", "pytest"]', cheap_without_edits=True,
                     focus_only=True, issues=NAMED)  # fmt: skip
    out = tmp_path / "out"
    ledger = out / LEDGER_FILE
    argv = [CASCADE, "replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config),
            "--out", str(out), "--sandbox", "local", "--concurrency", "2"]  # fmt: skip
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}

    killed = 0
    for round_ in range(KILLS):
        # Kill a random moment after this process starts a task, writes an attempt record, or
        # finishes a task: inside the model call, the gate, the proof log or the ledger.
        event = rng.choice(["start", "attempt", "done"])
        before = _progress(out)[event]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 90
        while _progress(out)[event] <= before and proc.poll() is None:
            assert time.monotonic() < deadline, f"the replay made no progress {why}"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()
        if round_ == 1:
            with ledger.open("ab") as handle:  # as if the kill had landed inside a write
                handle.write(TORN)
    assert killed >= 2, f"the batch finished before it could be killed {why}"

    final = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stderr + why

    # The torn line was terminated by the writer, kept, and skipped by every reader.
    raw = ledger.read_bytes()
    assert TORN + b"\n" in raw and raw.endswith(b"\n")
    assert read_jsonl(ledger).bad_lines == 1

    state = read_ledger(ledger)
    ids = {f"{issue}-c{c}" for issue in NAMED for c in range(1, COPIES + 1)}
    assert set(state.tasks) == ids, why
    dones = [r for r in read_jsonl(ledger).records if r.get("event") == "done"]
    assert sorted(r["task"] for r in dones) == sorted(ids), f"a task finished twice {why}"

    folders = {p.name for p in (out / RUNS_DIR).iterdir()}
    started = {run for s in state.tasks.values() for run in s.runs}
    assert folders <= started, "every run folder is named by a start line"
    aborted_total = 0
    for task_id, task in state.tasks.items():
        assert task.done is not None and task.done.outcome is not None
        assert task.done.outcome.status == "verified", (task_id, task.done.outcome.error, why)
        assert task.open_runs == [], f"{task_id}: a run left neither finished nor aborted {why}"
        # The finished run: a verifying proof whose records match its outcome, seq 1..n.
        run_dir = out / RUNS_DIR / task.done.run_id
        report = verify_run(run_dir)
        assert report.ok, (report.problems, why)
        attempts = RunFolder(run_dir).attempts()
        assert [a.seq for a in attempts] == list(range(1, task.done.outcome.attempts + 1))
        assert {a.task_id for a in attempts} == {task_id}
        # Cut-short runs: marked, kept, their complete records an intact chain.
        for run_id in task.aborted:
            aborted_total += 1
            folder = out / RUNS_DIR / run_id
            if not folder.exists():
                continue  # killed between the start line and creating the folder
            assert (folder / ABORTED_FILE).is_file(), run_id
            # What a kill can leave: a torn last record, no seal, or (killed while the folder
            # was being made) no log or blobs yet. Never a broken chain or a bad digest.
            problems = verify_run(folder).problems
            allowed = ("torn last line", "not sealed", "cannot be read", "blobs/ is missing")
            assert all(any(a in p for a in allowed) for p in problems), (problems, why)
            assert [a.seq for a in RunFolder(folder).attempts()] == list(
                range(1, len(RunFolder(folder).attempts()) + 1)
            )
    assert aborted_total >= 1, f"no kill landed inside a run {why}"

    # The report counts each finished task's attempts once, and aborted ones apart.
    report_json = json.loads((out / "report.json").read_text())
    assert report_json["tasks"]["verified"] == len(ids)
    assert report_json["attempts"]["total"] == 2 * len(ids)
    assert report_json["tasks"]["aborted_runs"] == aborted_total
