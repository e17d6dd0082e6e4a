"""`cascade replay --executor ray` on a real Ray cluster on loopback (a head and a second worker
node, each a `ray start` of its own, shared by every test here): the demo backlog gives the same
outcomes, costs and verifying proofs as the local executor, its tasks spread over both nodes and
the ledger names them; the batch's purse holds across nodes; a SIGKILLed driver resumes with
nothing lost or counted twice; a node killed mid-task makes that task an infrastructure error
that --retry-errors runs again; a node without the sandbox image says so and what to run."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cascade.proof.verify import verify_run
from cascade.replay.batch import ABORTED_FILE, LEDGER_FILE, RUNS_DIR
from cascade.replay.ledger import read_jsonl, read_ledger
from cascade.testing.demo import demo_backlog
from cascade.testing.ray_cluster import LocalRayCluster

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_engine")]

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
CASCADE = str(Path(sys.executable).parent / "cascade")
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "RAY_USAGE_STATS_ENABLED": "0"}
NAMED = ("DEMO-1", "DEMO-2", "DEMO-3")
LATENCY = 5.0  # each answer of the killed-node test, to kill the node inside a call


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    """Head and one worker node, two sandbox slots each; stopped (by SIGKILL to each node's
    process group, never `ray stop`) after the module."""
    ray_cluster = LocalRayCluster(env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"}).start(slots=2)
    try:
        ray_cluster.add_node("second", slots=2)
        ray_cluster.wait_for(2)
        yield ray_cluster
    finally:
        ray_cluster.stop()


def _replay(
    argv: list[str], cluster: LocalRayCluster, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CASCADE, "replay", *argv], env={**ENV, **cluster.driver_env()}, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _done(out: Path) -> dict[str, dict[str, Any]]:
    return {r["task"]: r for r in read_jsonl(out / LEDGER_FILE).records if r.get("event") == "done"}


def test_the_demo_backlog_on_two_nodes_matches_the_local_executor(
    demo: Path, tmp_path: Path, cluster: LocalRayCluster
) -> None:
    backlog = [str(demo / ".cascade" / "issues"), "--repo", str(demo), "--json"]
    ray_args = [
        "--out",
        str(tmp_path / "ray"),
        "--executor",
        "ray",
        "--ray-address",
        cluster.address,
    ]
    local_args = ["--out", str(tmp_path / "local"), "--concurrency", "2"]
    # Both at once (they share nothing but the repository, which they only read).
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        ray_run = pool.submit(_replay, [*backlog, *ray_args], cluster)
        local_run = pool.submit(_replay, [*backlog, *local_args], cluster)
        on_ray, local = ray_run.result(), local_run.result()
    assert on_ray.returncode == 0, on_ray.stderr
    assert local.returncode == 0, local.stderr

    ray_done, local_done = _done(tmp_path / "ray"), _done(tmp_path / "local")
    assert set(ray_done) == set(local_done) == {"DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4"}
    for task, line in ray_done.items():
        got, want = line["outcome"], local_done[task]["outcome"]
        for key in ("status", "verified_rung", "attempts", "cost_usd", "patch_sha256"):
            assert got.get(key) == want.get(key), (task, key)
        assert got["status"] == "verified"
        report = verify_run(Path(got["run_dir"]))
        assert report.ok, (task, report.problems)
        assert Path(got["run_dir"]).parent == tmp_path / "ray" / RUNS_DIR
        assert "node" not in local_done[task]
    # Four tasks at once on two slots a node: both nodes ran some, and the ledger, the progress
    # and the report name them.
    nodes = {line["node"] for line in ray_done.values()}
    assert len(nodes) == 2, nodes
    for node in nodes:
        assert f"running on {node}" in on_ray.stderr
    assert "2 node(s), 4 task slot(s)" in on_ray.stderr
    summary = json.loads(on_ray.stdout)
    assert summary["tasks"]["verified"] == 4 and summary["exit_code"] == 0
    assert summary["cost"]["total_usd"] == pytest.approx(
        json.loads(local.stdout)["cost"]["total_usd"]
    )


def test_the_batch_budget_holds_across_nodes(tmp_path: Path, cluster: LocalRayCluster) -> None:
    """`[budget] batch_max_cost_usd` is one purse on the driver's desk: four tasks at once on two
    nodes reserve each call there, so together they never commit more than the cap."""
    cap = 0.02  # six tasks would spend ~0.05: each climbs to the strong rung
    b = demo_backlog(DEMO, tmp_path / "b", copies=2, gate='["diff_scope"]',
                     cheap_without_edits=True, issues=NAMED)  # fmt: skip
    b.config.write_text(b.config.read_text() + f"\n[budget]\nbatch_max_cost_usd = {cap}\n")
    out = tmp_path / "out"
    args = [str(b.backlog), "--repo", str(b.repo), "--config", str(b.config), "--out", str(out)]
    proc = _replay([*args, "--executor", "ray", "--ray-address", cluster.address], cluster)
    assert proc.returncode == 0, proc.stderr
    outcomes = [line["outcome"] for line in _done(out).values()]
    assert len(outcomes) == len(b.ids)
    assert len({line["node"] for line in _done(out).values()}) == 2
    assert sum(o["cost_usd"] for o in outcomes) <= cap
    stopped = [o for o in outcomes if "batch_max_cost_usd" in o["stop_reason"]]
    assert stopped, [o["stop_reason"] for o in outcomes]
    assert any(o["cost_usd"] > 0 for o in outcomes)


def _progress(out: Path) -> tuple[int, int]:
    raw = (out / LEDGER_FILE).read_bytes() if (out / LEDGER_FILE).exists() else b""
    return raw.count(b'"event":"start"'), raw.count(b'"event":"done"')


def test_a_sigkilled_driver_resumes_losing_and_duplicating_nothing(
    tmp_path: Path, cluster: LocalRayCluster
) -> None:
    b = demo_backlog(DEMO, tmp_path / "b", copies=1, latency_s=1.0,
                     gate='["diff_scope", "pytest"]', cheap_without_edits=True,
                     focus_only=True, issues=NAMED)  # fmt: skip
    out = tmp_path / "out"
    # Two of the three at a time: when the first is done, another is in flight.
    argv = [CASCADE, "replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config),
            "--out", str(out), "--executor", "ray", "--ray-address", cluster.address,
            "--concurrency", "2"]  # fmt: skip
    proc = subprocess.Popen(
        argv, env={**ENV, **cluster.driver_env()}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while _progress(out)[1] < 1 and proc.poll() is None:  # one task done, others in flight
        assert time.monotonic() < deadline, "the replay made no progress"
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stderr is not None
    proc.stderr.close()
    started, finished = _progress(out)
    assert started > finished >= 1

    final = subprocess.run(
        argv,
        env={**ENV, **cluster.driver_env()},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert final.returncode == 0, final.stderr
    assert "cut short; marked aborted" in final.stderr

    ledger = out / LEDGER_FILE
    state = read_ledger(ledger)
    assert set(state.tasks) == set(b.ids)
    dones = [r for r in read_jsonl(ledger).records if r.get("event") == "done"]
    assert sorted(r["task"] for r in dones) == sorted(b.ids), "a task finished twice"
    aborted = 0
    for task_id, task in state.tasks.items():
        assert task.done is not None and task.done.outcome is not None
        assert task.done.outcome.status == "verified", (task_id, task.done.outcome.error)
        assert task.open_runs == []
        report = verify_run(out / RUNS_DIR / task.done.run_id)
        assert report.ok, report.problems
        for run_id in task.aborted:
            aborted += 1
            folder = out / RUNS_DIR / run_id
            if folder.exists():
                assert (folder / ABORTED_FILE).is_file()
    assert aborted >= 1
    report_json = json.loads((out / "report.json").read_text())
    assert report_json["tasks"]["verified"] == len(b.ids)
    assert report_json["attempts"]["total"] == 2 * len(b.ids)  # aborted runs counted apart


def _slow_one(tmp_path: Path) -> Any:
    """DEMO-1 alone, proven by its test, each answer LATENCY s: time to act inside a call."""
    return demo_backlog(DEMO, tmp_path / "b", copies=1, latency_s=LATENCY,
                        gate='["diff_scope", "pytest"]', focus_only=True, cheap_without_edits=True,
                        issues=("DEMO-1",))  # fmt: skip


def test_a_node_killed_mid_task_is_an_error_that_retry_errors_runs_again(
    tmp_path: Path, cluster: LocalRayCluster
) -> None:
    b = _slow_one(tmp_path)
    out = tmp_path / "out"
    victim = cluster.add_node("victim", slots=1, victim=1)
    cluster.wait_for(3)
    base = [str(b.backlog), "--repo", str(b.repo), "--config", str(b.config), "--out", str(out),
            "--executor", "ray", "--ray-address", cluster.address]  # fmt: skip
    pinned = ["--ray-resources", '{"cascade_sandbox": 1, "victim": 1}']
    argv = [CASCADE, "replay", *base, *pinned]
    proc = subprocess.Popen(
        argv,
        env={**ENV, **cluster.driver_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    prompts = out / RUNS_DIR / "DEMO-1-c1.r1" / "blobs"
    deadline = time.monotonic() + 120
    while not (prompts.is_dir() and any(prompts.iterdir())) and proc.poll() is None:
        assert time.monotonic() < deadline, "the task never started on the victim node"
        time.sleep(0.1)
    time.sleep(1)  # inside the first model call (LATENCY s of simulated latency): the node dies
    victim.kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "was lost while it ran the task" in err
    line = _done(out)["DEMO-1-c1"]
    assert line["outcome"]["status"] == "error"
    error = line["outcome"]["error"]  # which Ray says first depends on when it saw the node go
    assert "NodeDiedError" in error or "WorkerCrashedError" in error, error
    cut = out / RUNS_DIR / "DEMO-1-c1.r1"
    assert (cut / ABORTED_FILE).is_file() and not (cut / "outcome.json").exists()

    # Once the node is back, --retry-errors runs it again; the errored run stays on record.
    cluster.add_node("victim-again", slots=1, victim=1)
    cluster.wait_for(3)
    again = _replay([*base, *pinned, "--retry-errors"], cluster)
    assert again.returncode == 0, again.stderr
    state = read_ledger(out / LEDGER_FILE).tasks["DEMO-1-c1"]
    assert state.done is not None and state.done.outcome is not None
    assert state.done.outcome.status == "verified"
    assert state.done.run_id == "DEMO-1-c1.r2"
    assert verify_run(out / RUNS_DIR / "DEMO-1-c1.r2").ok


def test_a_node_without_the_sandbox_image_says_which_node_and_what_to_run(
    tmp_path: Path, cluster: LocalRayCluster
) -> None:
    b = demo_backlog(DEMO, tmp_path / "b", copies=1, issues=("DEMO-1",))
    text = b.config.read_text(encoding="utf-8")
    b.config.write_text(text + '\n[sandbox]\nimage = "cascade-sandbox:not-built-anywhere"\n')
    out = tmp_path / "out"
    argv = [str(b.backlog), "--repo", str(b.repo), "--config", str(b.config), "--out", str(out)]
    proc = _replay([*argv, "--executor", "ray", "--ray-address", cluster.address], cluster)
    assert proc.returncode == 3, proc.stderr
    error = _done(out)["DEMO-1-c1"]["outcome"]["error"]
    assert error.startswith("InfraError: node ") and "cascade sandbox build" in error
    assert "not-built-anywhere" in error


def test_resources_no_node_offers_are_refused_before_any_task(
    tmp_path: Path, cluster: LocalRayCluster
) -> None:
    """A task that asks for what no node has would wait forever in Ray's queue: refused."""
    b = demo_backlog(DEMO, tmp_path / "b", copies=1, issues=("DEMO-1",))
    out = tmp_path / "out"
    argv = [str(b.backlog), "--repo", str(b.repo), "--config", str(b.config), "--out", str(out)]
    ask = ["--ray-resources", '{"cascade_sandbox": 1, "gpu_box": 1}']
    proc = _replay([*argv, "--executor", "ray", "--ray-address", cluster.address, *ask], cluster)
    assert proc.returncode == 2, proc.stderr
    assert 'offers what a task asks for ({"cascade_sandbox": 1.0, "gpu_box": 1.0})' in proc.stderr
    assert not (out / LEDGER_FILE).exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_kills_the_nodes_tasks_and_the_next_run_collects_their_sandboxes(
    tmp_path: Path, cluster: LocalRayCluster
) -> None:
    from sandboxes.docker_api import OWNER_LABEL, RUN_LABEL, connect

    b = _slow_one(tmp_path)
    out = tmp_path / "out"
    argv = [CASCADE, "replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config),
            "--out", str(out), "--executor", "ray", "--ray-address", cluster.address]  # fmt: skip
    env = {**ENV, **cluster.driver_env()}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    blobs = out / RUNS_DIR / "DEMO-1-c1.r1" / "blobs"
    deadline = time.monotonic() + 120
    while not (blobs.is_dir() and any(blobs.iterdir())) and proc.poll() is None:
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.1)
    time.sleep(1)  # inside the first model call, its sandbox open
    client = connect()
    try:
        label = {"label": f"{RUN_LABEL}=DEMO-1-c1.r1"}
        owners = {c.labels[OWNER_LABEL] for c in client.containers.list(all=True, filters=label)}
        assert len(owners) == 1, owners  # the node's worker process opened them
        pid = int(owners.pop().rpartition(":")[2])
        assert _alive(pid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        deadline = time.monotonic() + 20
        while _alive(pid):  # the task was cancelled on its node: its worker is gone
            assert time.monotonic() < deadline, "the node kept running the interrupted task"
            time.sleep(0.2)
        assert not (out / RUNS_DIR / "DEMO-1-c1.r1" / "outcome.json").exists()

        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                               check=False)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "cut short; marked aborted" in again.stderr
        assert read_ledger(out / LEDGER_FILE).tasks["DEMO-1-c1"].done is not None
        # The rerun's node collected what the killed worker left (its owner process is dead).
        assert client.containers.list(all=True, filters=label) == []
    finally:
        client.close()
