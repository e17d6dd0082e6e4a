"""`cascade replay --executor ray` before and around the cluster: every flag that cannot work is
refused with exit 2 and a sentence saying what to do (no cluster named, a dead address, Ray not
installed, flags a cluster cannot honour); `--ray-address local` runs
a batch on a cluster started for the command; a node that does not see the batch folder at the
driver's path, or runs another cascade, says so instead of writing elsewhere."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cascade import __version__
from cascade.errors import InfraError
from cascade.replay.batch import LEDGER_FILE
from cascade.replay.ledger import read_jsonl
from cascade.replay.on_node import MARK_FILE, NodeSpec, _check
from cascade.testing.demo import demo_backlog
from cascade.wiring.settings import load_config

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
CASCADE = str(Path(sys.executable).parent / "cascade")
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "RAY_USAGE_STATS_ENABLED": "0"}
ENV.pop("RAY_ADDRESS", None)
# A local cluster with token authentication (Ray's default for `ray.init()`), its token given
# here: Ray would otherwise write one to ~/.ray/auth_token, which later clusters would pick up.
ENV.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))


@pytest.fixture(scope="module")
def backlog(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One demo issue, judged by diff_scope only, in the local sandbox: a few seconds a run."""
    b = demo_backlog(DEMO, tmp_path_factory.mktemp("b"), copies=1, gate='["diff_scope"]',
                     issues=("DEMO-1",))  # fmt: skip
    return [str(b.backlog), "--repo", str(b.repo), "--config", str(b.config), "--sandbox", "local"]


def _replay(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CASCADE, "replay", *args], env=env or ENV, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--executor", "ray"], "--executor ray needs a cluster: --ray-address HOST:PORT"),
        (["--ray-address", "local"], "--ray-address goes with --executor ray"),
        (["--ray-resources", "{}"], "--ray-resources goes with --executor ray"),
        (["--executor", "slurm"], "--executor 'slurm': choose 'local' or 'ray'"),
        (
            ["--executor", "ray", "--ray-address", "local", "--record", "x.jsonl"],
            "--record is not available with --executor ray: nodes would append",
        ),
        (
            ["--executor", "ray", "--ray-address", "local", "--model-concurrency", "2"],
            "--model-concurrency is not available with --executor ray",
        ),
        (
            ["--executor", "ray", "--ray-address", "local", "--ray-resources", "[1]"],
            "--ray-resources '[1]': give a JSON object of resource names to amounts above 0",
        ),
        (
            ["--executor", "ray", "--ray-address", "local", "--ray-resources", '{"a": 0}'],
            "amounts above 0",
        ),
        (
            ["--executor", "ray", "--ray-address", "local", "--ray-resources", "{oops"],
            "not JSON",
        ),
        (
            ["--executor", "ray", "--ray-address", "local", "--ray-resources", '{"s": 0.00001}'],
            "s: amounts are multiples of 0.0001",
        ),
        (
            ["--executor", "ray", "--ray-address", "ray://127.0.0.1:10001"],
            "Ray Client addresses are not supported; give the head's HOST:PORT",
        ),
        (["--executor", "slurm", "--plan"], "--executor 'slurm': choose 'local' or 'ray'"),
    ],
)
def test_flags_a_cluster_cannot_take_are_refused_before_any_work(
    backlog: list[str], tmp_path: Path, flags: list[str], says: str
) -> None:
    proc = _replay([*backlog, "--out", str(tmp_path / "out"), *flags])
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / LEDGER_FILE).exists()


def test_a_dead_address_is_refused_at_once(backlog: list[str], tmp_path: Path) -> None:
    port = _free_port()
    args = [*backlog, "--out", str(tmp_path / "out"), "--executor", "ray"]
    proc = _replay([*args, "--ray-address", f"127.0.0.1:{port}"], timeout=30)
    assert proc.returncode == 2 and f"127.0.0.1:{port}: nothing answers there" in proc.stderr
    from_env = _replay(args, env={**ENV, "RAY_ADDRESS": f"127.0.0.1:{port}"}, timeout=30)
    assert from_env.returncode == 2 and "nothing answers there" in from_env.stderr


def test_without_ray_installed_the_flag_names_the_install_command(
    backlog: list[str], tmp_path: Path
) -> None:
    shim = tmp_path / "shim" / "ray"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**ENV, "PYTHONPATH": str(shim.parent)}
    args = [*backlog, "--out", str(tmp_path / "out"), "--executor", "ray"]
    proc = _replay([*args, "--ray-address", "local"], env=env)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'cascade-engine[ray]'" in proc.stderr
    assert _replay([*backlog, "--out", str(tmp_path / "o2")], env=env).returncode == 0


def test_a_local_cluster_runs_the_batch_and_names_its_node(
    backlog: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # CPU is one of Ray's own keywords (num_cpus), not a custom resource: both asks hold.
    ask = ["--ray-resources", '{"cascade_sandbox": 1, "CPU": 1}']
    proc = _replay(
        [*backlog, "--out", str(out), "--executor", "ray", "--ray-address", "local", *ask]
    )
    assert proc.returncode == 0, proc.stderr
    assert "ray cluster at local: 1 node(s), 2 task slot(s)" in proc.stderr
    done = [r for r in read_jsonl(out / LEDGER_FILE).records if r.get("event") == "done"]
    assert len(done) == 1 and done[0]["node"].startswith(socket.gethostname() + "/")
    assert f"running on {done[0]['node']}" in proc.stderr


def _spec(tmp_path: Path, mark: str, version: str = __version__) -> NodeSpec:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    loaded = load_config(repo)
    return NodeSpec(loaded, repo, "0" * 40, tmp_path / "batch", mark, desk=None, version=version)


def test_a_node_that_cannot_see_the_batch_folder_says_so(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "abc")
    with pytest.raises(InfraError, match=r"cannot see the batch folder .* at the driver's paths"):
        _check(spec, "n1")
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / MARK_FILE).write_text("another batch's\n")
    with pytest.raises(InfraError, match="cannot see the batch folder"):
        _check(spec, "n1")
    (tmp_path / "batch" / MARK_FILE).write_text("abc\n")
    _check(spec, "n1")  # the driver's mark: this node shares the folder
    with pytest.raises(InfraError, match=r"runs cascade .*, the driver 0\.0\.0-other"):
        _check(_spec(tmp_path / "v", "abc", version="0.0.0-other"), "n1")
