"""The sandbox images as a CI cache: the key `cascade sandbox cache-key` prints (stable, changed by
what an image is built from and by nothing else, read from git at HEAD), `cascade sandbox save`
(one `docker save` tarball of the base and the sandbox image), and the Action's cache steps."""

from __future__ import annotations

import json
import re
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.config import SandboxConfig
from cascade.testing import git, make_repo
from sandboxes.image_cache import cache_key, key_inputs

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
KEY = re.compile(r"cascade-sandbox-[0-9a-f]{32}")
PYPROJECT = '[project]\nname = "x"\nversion = "0.1"\nrequires-python = "{spec}"\n'
CACHE_SHA = re.compile(r"actions/cache/(restore|save)@([0-9a-f]{40}) # v4\.\d+\.\d+$")


def _commit(repo: Path, files: dict[str, str], message: str = "change") -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {
        "pyproject.toml": PYPROJECT.format(spec=">=3.10"),
        "requirements.txt": "attrs==23.1\n",
        "src/x.py": "X = 1\n",
    }
    return make_repo(tmp_path / "repo", files)


def test_the_key_is_stable_and_changes_with_the_sandbox_settings(repo: Path) -> None:
    config = SandboxConfig()
    key = cache_key(config, repo)
    assert KEY.fullmatch(key) and cache_key(config, repo) == key
    assert cache_key(SandboxConfig(image="other:latest"), repo) != key
    assert cache_key(SandboxConfig(python="3.13"), repo) != key
    tools = SandboxConfig(options={"tools": ["pytest==8.3.5", "ruff"]})
    assert cache_key(tools, repo) != key


def test_the_key_follows_the_python_the_repository_asks_for_at_head(repo: Path) -> None:
    config = SandboxConfig()
    before = cache_key(config, repo)
    (repo / "pyproject.toml").write_text(PYPROJECT.format(spec=">=3.12"))
    assert cache_key(config, repo) == before  # not committed: build reads HEAD
    git(repo, "commit", "-qam", "needs 3.12")
    assert cache_key(config, repo) != before
    # With [sandbox] python set, that setting decides: requires-python is not read.
    pinned = SandboxConfig(python="3.13")
    assert key_inputs(pinned, repo, "HEAD")["requires"] is None


def test_the_key_follows_setup_and_the_dependency_files_only(repo: Path) -> None:
    plain = SandboxConfig()
    setup = SandboxConfig(setup=("pip install -r requirements.txt",))
    keys = {cache_key(plain, repo), cache_key(setup, repo)}
    assert len(keys) == 2
    other = SandboxConfig(setup=("pip install -e .",))
    assert cache_key(other, repo) not in keys

    # Source only: no image depends on it, so the key stays (with and without setup).
    _commit(repo, {"src/x.py": "X = 2\n", "src/y.py": "Y = 1\n"}, "code")
    assert {cache_key(plain, repo), cache_key(setup, repo)} == keys

    _commit(repo, {"requirements.txt": "attrs==23.2\n"}, "deps")
    assert cache_key(plain, repo) in keys  # no environment image: nothing to rebuild
    assert cache_key(setup, repo) not in keys


def test_a_new_tag_changes_the_key_only_when_setup_sees_git(repo: Path) -> None:
    with_git = SandboxConfig(setup=("true",))
    without = SandboxConfig(setup=("true",), setup_git=False)
    before = (cache_key(with_git, repo), cache_key(without, repo))
    git(repo, "tag", "v1.0")
    assert cache_key(with_git, repo) != before[0]
    assert cache_key(without, repo) == before[1]


def test_a_folder_that_is_not_a_checkout_has_a_key_unless_setup_needs_one(tmp_path: Path) -> None:
    (tmp_path / "cascade.toml").write_text("[sandbox]\ncommand_timeout = 60\n")
    result = CliRunner().invoke(app, ["sandbox", "cache-key", "--repo", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert KEY.fullmatch(result.stdout.strip())
    (tmp_path / "cascade.toml").write_text('[sandbox]\nsetup = ["true"]\n')
    result = CliRunner().invoke(app, ["sandbox", "cache-key", "--repo", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_the_command_prints_the_key_of_the_resolved_configuration(repo: Path) -> None:
    _commit(repo, {"cascade.toml": "[sandbox]\ncommand_timeout = 60\n"}, "config")
    result = CliRunner().invoke(app, ["sandbox", "cache-key", "--repo", str(repo)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == cache_key(SandboxConfig(command_timeout=60), repo)


@pytest.mark.parametrize(
    "config",
    ["[sandbox\nimage = 1\n", "[sandbox]\npython = 3.10\n", "[sandbox.options]\ncpus = -1\n"],
    ids=["not-toml", "bad-setting", "bad-docker-option"],
)
def test_a_broken_configuration_is_exit_2_with_a_message(repo: Path, config: str) -> None:
    (repo / "cascade.toml").write_text(config)
    result = CliRunner().invoke(app, ["sandbox", "cache-key", "--repo", str(repo)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.docker
def test_save_writes_the_base_and_the_sandbox_image(
    repo: Path, tmp_path: Path, docker_engine: None
) -> None:
    from docker.errors import ImageNotFound

    from sandboxes.docker_api import DockerOptions, connect

    config = SandboxConfig()
    base = DockerOptions.from_config(config).base
    client = connect()
    try:
        client.images.get(base)
    except ImageNotFound:  # as build chooses when the configured base is not there
        base = "cascade-base:bookworm"
    finally:
        client.close()
    out = tmp_path / "out" / "images.tar"
    result = CliRunner().invoke(app, ["sandbox", "save", "--repo", str(repo), "--output", str(out)])
    try:
        assert result.exit_code == 0, result.output
        with tarfile.open(out) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        tags = {tag for entry in manifest for tag in entry["RepoTags"] or []}
        assert tags == {base, config.image}
        assert f"saved {config.image} (sha256:" in result.stdout
        assert " MB, 2 images" in result.stdout
        assert [p.name for p in out.parent.iterdir()] == ["images.tar"]  # no part file left
    finally:
        out.unlink(missing_ok=True)


@pytest.mark.docker
def test_save_before_a_build_says_to_build_first(
    repo: Path, tmp_path: Path, docker_engine: None
) -> None:
    image = f"cascade-sandbox:never-built-{uuid.uuid4().hex[:8]}"
    _commit(repo, {"cascade.toml": f'[sandbox]\nimage = "{image}"\n'}, "config")
    out = tmp_path / "images.tar"
    result = CliRunner().invoke(app, ["sandbox", "save", "--repo", str(repo), "--output", str(out)])
    assert result.exit_code == 3, result.output
    assert (
        f"{image} is not there (not built yet): run `cascade sandbox build` first" in result.stderr
    )
    assert "Traceback" not in result.output
    assert list(tmp_path.glob("images.tar*")) == []


def _steps() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ACTION.read_text())
    return list(doc["runs"]["steps"])


def test_the_action_caches_pip_the_images_and_the_baselines() -> None:
    steps = _steps()
    names = [step.get("name", "") for step in steps]
    order = [
        "Restore pip's cache", "Install cascade", "Save pip's cache", "Key the sandbox images",
        "Restore the sandbox images", "Load the sandbox images",
        "Build or reuse the sandbox image", "Save the sandbox images", "Cache the sandbox images",
        "Restore the baselines", "Run cascade", "Save the baselines",
    ]  # fmt: skip
    assert [name for name in names if name in order] == order
    by_name = {step.get("name"): step for step in steps}
    assert "cascade sandbox cache-key" in by_name["Key the sandbox images"]["run"]
    assert 'docker load -i "$IMAGES_TAR"' in by_name["Load the sandbox images"]["run"]
    saving = by_name["Save the sandbox images"]
    assert "cascade sandbox save" in saving["run"] and "cache-hit != 'true'" in saving["if"]
    for name in ("Restore the baselines", "Save the baselines"):  # never the seal key
        assert by_name[name]["with"]["path"] == "${{ steps.cache-plan.outputs.baselines-dir }}"
        assert "steps.baselines-seal.outcome == 'success'" in by_name[name]["if"]
    for name in ("Restore the baselines", "Restore the sandbox images"):  # this key, no other
        assert "restore-keys" not in by_name[name]["with"], name
    seal = by_name["Install the baseline seal"]
    assert "inputs.baseline-key != ''" in seal["if"] and "inputs.cache != 'false'" in seal["if"]
    assert seal["env"] == {"SEAL_SECRET": "${{ inputs.baseline-key }}"}
    assert "/cascade/baseline.key" in seal["run"] and "umask 077" in seal["run"]
    plan = by_name["Plan the caches"]["run"]
    assert '"$GITHUB_ACTION_PATH/constraints.txt"' in plan
    assert "cascade-baselines-$RUNNER_OS-$GITHUB_SHA" in plan
    assert "/.cascade/cache/baselines" in plan and "baseline.key" not in plan
    assert "!cancelled()" in by_name["Save the baselines"]["if"]
    assert saving.get("continue-on-error") is True  # a failed save never stops the run
    # `cache: false` turns every one of them off: each hangs on the input or on a step that does.
    action = yaml.safe_load(ACTION.read_text())
    assert action["inputs"]["cache"]["default"] == "true"
    for step in steps:
        if "actions/cache/" in step.get("uses", "") or step.get("id") in ("cache-plan",):
            hangs = ("inputs.cache != 'false'", "steps.images-", "steps.baselines-seal")
            assert any(h in step["if"] for h in hangs), step


def test_the_action_runs_no_expression_and_pins_every_action() -> None:
    for step in _steps():
        assert "${{" not in str(step.get("run", "")), step.get("name")
        uses = step.get("uses", "")
        assert not uses or re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), uses
    lines = [line.strip() for line in ACTION.read_text().splitlines() if "actions/cache/" in line]
    pins = [CACHE_SHA.search(line) for line in lines]  # each with its `# v4.x.y` comment
    assert len(lines) == 6 and all(pins), lines
    assert len({pin.group(2) for pin in pins if pin}) == 1  # one release throughout


def test_the_docs_workflow_that_fills_the_cache_is_sound(tmp_path: Path) -> None:
    from tests.test_action_yaml import DOCS, _actionlint, problems

    found = re.search(
        r"```yaml\n(# \.github/workflows/cascade-cache\.yml.*?)```", DOCS.read_text(), re.DOTALL
    )
    assert found is not None, "docs/github-action.md shows no cascade-cache.yml"
    doc = yaml.safe_load(found.group(1))
    assert problems(doc) == []
    assert set(doc[True]) == {"push"}  # a trigger that may write the default branch's cache
    assert doc["permissions"] == {} and doc["jobs"]["warm"]["permissions"] == {"contents": "read"}
    path = tmp_path / "cascade-cache.yml"
    path.write_text(found.group(1))
    result = _actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr
