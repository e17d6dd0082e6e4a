"""`cascade fix` as a user meets it: the bundled demo copied into a real git repository, the
command line run for real (in-process for the quick error paths, a subprocess through Docker for
the whole demo), and the proof checked with `cascade proof verify`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.proof.run_folder import RunFolder
from cascade.testing import git
from tests.loopback import chat_body

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
runner = CliRunner()


def _fix(repo: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["fix", *args, "--repo", str(repo), "--sandbox", "local"])
    return result.exit_code, result.stdout, result.stderr


def test_missing_issue_is_exit_2_naming_where_it_looked(demo: Path) -> None:
    code, _, err = _fix(demo, "NOPE-1")
    assert code == 2
    assert "NOPE-1" in err and str(demo / ".cascade" / "issues") in err
    assert "DEMO-1" in err  # what is there instead
    assert "Traceback" not in err


def test_malformed_config_is_exit_2_naming_the_key(demo: Path) -> None:
    toml = demo / "cascade.toml"
    toml.write_text(toml.read_text().replace("attempts = 1", "attemps = 1", 1))
    code, _, err = _fix(demo, "DEMO-1")
    assert code == 2
    assert "attemps" in err and "cascade.toml" in err
    toml.write_text("[[ladder]\nname = ")
    code, _, err = _fix(demo, "DEMO-1")
    assert code == 2 and "not valid TOML" in err


def test_bad_start_rung_and_bad_repo_are_usage_errors(demo: Path, tmp_path: Path) -> None:
    code, _, err = _fix(demo, "DEMO-1", "--start-at", "huge")
    assert code == 2 and "huge" in err and "cheap, strong" in err
    plain = tmp_path / "plain"
    plain.mkdir()
    code, _, err = _fix(plain, "DEMO-1")
    assert code == 2 and "not a git repository" in err


def test_fix_json_and_apply_on_the_local_sandbox(demo: Path) -> None:
    code, out, err = _fix(demo, "DEMO-3", "--json", "--apply")
    assert code == 0, err
    outcome = json.loads(out)
    assert outcome["status"] == "verified" and outcome["verified_rung"] == "strong"
    assert outcome["attempts"] == 2 and outcome["cost_usd"] > 0
    run_dir = Path(outcome["run_dir"])
    assert run_dir.parent == demo / ".cascade" / "runs"
    assert "applied patch.diff" in err
    assert "def instalments" in (demo / "invoicekit" / "pricing.py").read_text()
    assert git(demo, "diff", "--stat").strip().startswith("invoicekit/pricing.py")
    verify = runner.invoke(app, ["proof", "verify", str(run_dir)])
    assert verify.exit_code == 0, verify.stdout


def test_apply_refuses_a_dirty_tree_before_spending_anything(demo: Path) -> None:
    (demo / "invoicekit" / "money.py").write_text("# local edit\n")
    code, _, err = _fix(demo, "DEMO-1", "--apply")
    assert code == 2 and "uncommitted changes" in err
    assert not (demo / ".cascade" / "runs").exists()


def test_prices_come_from_the_installed_map_without_a_fetch(demo: Path) -> None:
    """Run as a user would, with no LITELLM_LOCAL_MODEL_COST_MAP set and any fetch bound to fail
    (a proxy nobody listens on): litellm does not try to download its price map."""
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    cascade = str(Path(sys.executable).parent / "cascade")
    argv = [cascade, "fix", "DEMO-1", "--repo", str(demo), "--sandbox", "local", "--json"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "cost map" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["cost_usd"] > 0  # priced all the same


def test_proof_verify_reexecute_reproduces_the_verdicts(demo: Path, tmp_path: Path) -> None:
    # DEMO-3 runs the default workflow: the `[gate]` the loose config below rewrites.
    code, out, err = _fix(demo, "DEMO-3", "--json")
    assert code == 0, err
    run_dir = json.loads(out)["run_dir"]
    local = ["--repo", str(demo), "--sandbox", "local"]
    same = runner.invoke(app, ["proof", "verify", run_dir, "--reexecute", *local])
    assert same.exit_code == 0, same.stdout + same.stderr
    assert "2 recorded patch(es) re-judged" in same.stdout
    assert "every verdict is the same" in same.stdout
    assert "the gate is configured as when the patches were judged" in same.stdout
    # A gate without pytest would have let the cheap rung's wrong patch through: not reproduced.
    config = (demo / "cascade.toml").read_text()
    loose = tmp_path / "loose.toml"
    loose.write_text(re.sub(r"(?m)^evaluators = .*$", 'evaluators = ["diff_scope"]', config))
    changed = runner.invoke(
        app, ["proof", "verify", run_dir, "--reexecute", *local, "--config", str(loose)]
    )
    assert changed.exit_code == 1
    assert "1 verdict(s) change (1 newly accepted" in changed.stdout
    # The records say which gate judged them: the change is put down to the new configuration.
    assert "configured otherwise than when 2 of the 2 patch(es) were judged" in changed.stdout
    assert "not reproduced (the gate is configured otherwise now" in changed.stdout


def test_a_sandbox_plugin_is_named_like_any_other_part(demo: Path) -> None:
    def fix_with(backend: str) -> Any:
        return runner.invoke(app, ["fix", "DEMO-1", "--repo", str(demo), "--sandbox", backend])

    plugin = fix_with("sandboxes.local_sandbox:LocalSandbox")  # module:Class, as for evaluators
    assert plugin.exit_code == 0, plugin.stderr
    assert "sandbox sandboxes.local_sandbox:LocalSandbox" in plugin.stderr
    unknown = fix_with("nope")
    assert unknown.exit_code == 2
    assert "unknown sandbox 'nope'" in unknown.stderr and "docker" in unknown.stderr


def test_record_writes_a_cassette_only_for_real_models(demo: Path, tmp_path: Path) -> None:
    # Replayed answers are not re-recorded: the file is created by nothing.
    cassette = tmp_path / "rec.jsonl"
    code, _, err = _fix(demo, "DEMO-1", "--record", str(cassette))
    assert code == 0, err
    assert not cassette.exists()
    # A place that cannot take a cassette is a usage error before anything is spent.
    runs = len(list((demo / ".cascade" / "runs").iterdir()))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    code, _, err = _fix(demo, "DEMO-1", "--record", str(blocker / "rec.jsonl"))
    assert code == 2 and "record file" in err
    assert len(list((demo / ".cascade" / "runs").iterdir())) == runs  # no run was started


@pytest.mark.docker
@pytest.mark.usefixtures("docker_engine")
def test_demo_fixes_every_issue_in_docker_with_proof(tmp_path: Path) -> None:
    """The README's first command, as a user runs it in the Docker sandbox: DEMO-5, a one-token
    bug, is verified on the repair rung at no cost with no scripted answer; on the others the
    repair rung finds nothing (DEMO-2, whose only failing test is hidden, and DEMO-3, whose
    tests fail on a name that does not exist yet, pass it over), then
    one rejected and one verified model attempt (DEMO-4, which names no test, first a rejected
    and an accepted reproduction); each proof verifies; one flipped byte fails it."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env["CASCADE"] = str(Path(sys.executable).parent / "cascade")
    env["DEMO_DIR"] = str(tmp_path / "demo")
    proc = subprocess.run(
        ["bash", "examples/run-demo.sh"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("sandbox docker") == 5
    runs = sorted(p for p in (tmp_path / "demo" / ".cascade" / "runs").iterdir() if p.is_dir())
    outcomes = {RunFolder(run).outcome().task_id: (run, RunFolder(run).outcome()) for run in runs}
    assert sorted(outcomes) == ["DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4", "DEMO-5"]
    searched, model = ("fix", "empty_patch"), [("fix", "rejected"), ("fix", "verified")]
    expected = {
        "DEMO-1": [searched, *model],
        "DEMO-2": model,
        "DEMO-3": model,  # its tests fail on a missing name: no statement to suspect
        "DEMO-4": [("reproduce", "rejected"), ("reproduce", "accepted"), searched, *model],
        "DEMO-5": [("fix", "verified")],
    }
    for task_id, (run, _) in outcomes.items():
        records = [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]
        assert [(r["role"], r["status"]) for r in records] == expected[task_id], task_id
        assert all(r["sandbox"].startswith("docker sha256:") for r in records)
    assert all(outcome.status == "verified" for _, outcome in outcomes.values())
    run, demo5 = outcomes["DEMO-5"]
    assert (demo5.verified_rung, demo5.cost_usd) == ("repair", 0)
    assert "+    if item.quantity >= BULK_QUANTITY" in (run / "patch.diff").read_text()
    # DEMO-4 is proven by the test its reproduce stage wrote, which ships in its patch.
    run, demo4 = outcomes["DEMO-4"]
    assert demo4.proving and demo4.proving[0].source == "reproduction"
    assert {p.source for p in demo4.proving} == {"reproduction"}
    patch = (run / "patch.diff").read_text()
    assert "+++ b/tests/test_report_currency.py" in patch and "+++ b/invoicekit/report.py" in patch
    # Tamper with one byte of the first run's log: verify fails and names the record.
    log = runs[0] / "attempts.jsonl"
    data = bytearray(log.read_bytes())
    at = data.index(b'"rejected"') + 2
    data[at] = ord("R")
    log.write_bytes(bytes(data))
    bad = runner.invoke(app, ["proof", "verify", str(runs[0])])
    assert bad.exit_code == 1
    line = data[:at].count(b"\n") + 1
    assert f"attempts.jsonl line {line}" in bad.stdout


def test_record_then_replay_gives_the_same_run(
    demo: Path, tmp_path: Path, fake_openai: Any
) -> None:
    """A ladder of real litellm providers (an OpenAI-compatible server on loopback), recorded
    with --record, then replayed from that cassette: same verdicts, same patch, same cost."""
    scripted = {
        (e["model"], e["task"]): e["content"]
        for e in map(json.loads, (DEMO / "cassettes" / "demo.jsonl").read_text().splitlines())
    }
    for model in ("replay/demo-cheap", "replay/demo-strong"):
        fake_openai.script.append((200, chat_body(scripted[(model, "DEMO-3")]), {}))
    prices = "input_cost_per_token = 0.000001\noutput_cost_per_token = 0.000002\n"
    real = "".join(
        f'[[ladder]]\nname = "{name}"\nmodel = "openai/fake-{name}"\n'
        f'api_base = "{fake_openai.base}"\n{prices}'
        for name in ("cheap", "strong")
    )
    config = tmp_path / "real.toml"
    config.write_text(real)
    cassette = tmp_path / "rec.jsonl"
    code, out, err = _fix(
        demo, "DEMO-3", "--config", str(config), "--json", "--record", str(cassette)
    )
    assert code == 0, err
    recorded = json.loads(out)
    lines = [json.loads(x) for x in cassette.read_text().splitlines()]
    assert [(x["task"], x["model"], x["attempt"]) for x in lines] == [
        ("DEMO-3", "replay/cheap", 1),
        ("DEMO-3", "replay/strong", 1),
    ]
    assert len(fake_openai.requests) == 2
    assert fake_openai.requests[0]["messages"][1]["content"].startswith("# Issue DEMO-3")
    replay = tmp_path / "replay.toml"
    replay.write_text(
        "".join(
            f'[[ladder]]\nname = "{name}"\nmodel = "replay/{name}"\ncassette = "{cassette}"\n'
            f"{prices}"
            for name in ("cheap", "strong")
        )
    )
    code, out, err = _fix(demo, "DEMO-3", "--config", str(replay), "--json")
    assert code == 0, err
    replayed = json.loads(out)
    assert len(fake_openai.requests) == 2  # no provider call
    assert replayed["patch_sha256"] == recorded["patch_sha256"]
    assert replayed["cost_usd"] == pytest.approx(recorded["cost_usd"]) and recorded["cost_usd"] > 0


def test_a_budget_stops_the_ladder_before_it_overspends(demo: Path) -> None:
    # The strong rung's first call is estimated far above the cap: the run stops instead.
    code, out, err = _fix(demo, "DEMO-1", "--json", "--max-cost-usd", "0.005")
    assert code == 1, err
    outcome = json.loads(out)
    assert outcome["status"] == "budget_exhausted"
    assert outcome["attempts"] == 1 and outcome["cost_usd"] < 0.005
    assert "budget stopped the ladder" in err
    assert "best unverified candidate (never applied): #1 on 'cheap'" in err
