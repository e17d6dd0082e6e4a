"""The sandbox's Python (issue 16, finding 5): `[sandbox] python`, else the repository's own
`requires-python` when the image's Python does not meet it, is honoured offline (the Debian
release that ships the version) or refused before any work with what can be had; every attempt
records the interpreter it ran. The choice itself is table-tested without Docker; the Docker tests
build the Python 3.13 image once (debootstrap of Debian trixie, ~4 min cold) and reuse it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.config import RungConfig, SandboxConfig
from cascade.core.engine import Engine
from cascade.core.gate import Gate
from cascade.errors import ConfigError, SandboxError
from cascade.proof.log import ProofLog
from cascade.proof.run_folder import RunFolder
from cascade.records import Issue, Task
from cascade.testing import ScriptedModel, git, make_repo
from cascade.wiring.registry import sandbox_opener
from evaluators.pytest_gate import PytestEvaluator
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.sandbox_python import Requirement, requirement, variant, wanted

# Python 3.12's itertools.batched: on an older Python the module does not even import.
CHUNKS = (
    "from itertools import batched\n\n\ndef chunks(xs, n):\n    return list(batched(xs, n + 1))\n"
)
TESTS = (
    "from chunks import chunks\n\n\n"
    "def test_pairs():\n    assert chunks([1, 2, 3, 4], 2) == [(1, 2), (3, 4)]\n"
)
FIX = (
    "chunks.py\n<<<<<<< SEARCH\n    return list(batched(xs, n + 1))\n=======\n"
    "    return list(batched(xs, n))\n>>>>>>> REPLACE\n"
)
PYPROJECT = '[project]\nname = "chunks"\nversion = "1.0"\nrequires-python = "{spec}"\n'


def _req(spec: str) -> Requirement:
    from packaging.specifiers import SpecifierSet

    return Requirement(SpecifierSet(spec), f"requires-python {spec!r} in pyproject.toml")


@pytest.mark.parametrize(
    ("setting", "spec", "built", "chosen"),
    [
        ("", None, {}, None),  # no requirement: the image's own
        ("", ">=3.8", {}, None),  # the image's own meets it
        ("", ">=3.12", {}, "3.13"),  # offline: Debian trixie
        ("", "<3.10", {}, "3.9"),  # offline: Debian bullseye
        ("", ">=3.12,<3.13", {"3.12": "3.12.8"}, "3.12"),  # an image of its own exists
        ("", "!=3.11.2", {}, "3.13"),  # the patch version counts
        ("3.9", ">=3.12", {}, "3.9"),  # the setting wins over the requirement
        ("3.12", None, {}, "3.12"),
    ],
)
def test_the_python_chosen(
    setting: str, spec: str | None, built: dict[str, str], chosen: str | None
) -> None:
    config = SandboxConfig(python=setting)
    found = _req(spec) if spec else None
    assert wanted(config, found, "3.11.2", built)[0] == chosen


def test_a_requirement_nothing_offline_meets_is_refused_naming_what_can_be_had() -> None:
    with pytest.raises(ConfigError) as caught:  # the repository asks what cannot be had
        wanted(SandboxConfig(), _req(">=3.12,<3.13"), "3.11.2", {})
    message = str(caught.value)
    assert "requires-python '>=3.12,<3.13' in pyproject.toml" in message
    assert "3.9 (Debian bullseye), 3.11 (Debian bookworm), 3.13 (Debian trixie)" in message
    assert "[sandbox] python" in message


def test_the_requirement_is_read_at_the_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"pyproject.toml": PYPROJECT.format(spec=">=3.12")})
    found = requirement(repo, "HEAD")
    assert found is not None and found.allows("3.13.5") and not found.allows("3.11.2")
    (repo / "pyproject.toml").write_text(PYPROJECT.format(spec="<3.10"))  # not committed
    assert requirement(repo, "HEAD") == found
    git(repo, "rm", "-qf", "pyproject.toml")
    (repo / "setup.cfg").write_text("[options]\npython_requires = <3.10\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "setup.cfg")
    old = requirement(repo, "HEAD")
    assert old is not None and old.allows("3.9.2") and "python_requires" in old.where
    (repo / "setup.cfg").write_text("[metadata]\nname = x\n")
    git(repo, "commit", "-qam", "none")
    assert requirement(repo, "HEAD") is None


def test_a_malformed_python_setting_says_what_it_wants() -> None:
    with pytest.raises(ValidationError, match=r'like "3\.11"'):
        SandboxConfig(python="3")
    with pytest.raises(ValidationError, match="as a string"):
        SandboxConfig.model_validate({"python": 3.10})
    assert variant("cascade-sandbox:latest", "3.13") == "cascade-sandbox:python3.13"
    assert variant("reg:5000/box:v2", "3.9") == "reg:5000/box:v2-python3.9"


@pytest.fixture
def python313(docker_engine: None) -> str:
    """The Python 3.13 sandbox image, built once (it is cached by tag and build key)."""
    from sandboxes.image import build_image

    return build_image(SandboxConfig(python="3.13"))


@pytest.mark.docker
@pytest.mark.slow  # the first time: the Python 3.13 image is built (~4 min)
@pytest.mark.anyio
async def test_a_repository_that_needs_a_newer_python_is_fixed_on_it(
    tmp_path: Path, python313: str
) -> None:
    files = {
        "pyproject.toml": PYPROJECT.format(spec=">=3.12"),
        "chunks.py": CHUNKS,
        "tests/test_chunks.py": TESTS,
    }
    repo = make_repo(tmp_path / "repo", files)
    issue = Issue(id="C-1", title="off by one", body="pairs", tests=("tests/test_chunks.py",))
    task = Task(issue=issue, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())
    engine = Engine(
        ladder=(RungConfig(name="cheap", model="scripted/cheap"),),
        models={"cheap": ScriptedModel("cheap", sequence=[FIX])},
        gate=Gate([PytestEvaluator()]),
        open_sandbox=sandbox_opener(SandboxConfig(backend="docker"), "docker", "py-test"),
        counter=lambda _rung: lambda text: len(text) // 4,
    )
    outcome = await engine.run(task, ProofLog.create(tmp_path / "runs"))
    attempts = list(RunFolder(Path(outcome.run_dir)).attempts())
    assert outcome.status == "verified", [a.feedback for a in attempts]
    assert [a.sandbox for a in attempts] == [f"docker {python313} python 3.13.5"]


@pytest.mark.docker
@pytest.mark.anyio
async def test_the_image_default_python_is_recorded_as_it_runs(
    tmp_path: Path, docker_engine: None
) -> None:
    repo = make_repo(tmp_path / "repo", {"pyproject.toml": PYPROJECT.format(spec=">=3.8")})
    box = await DockerSandbox.open(repo, "HEAD", SandboxConfig())
    try:
        asked = ["python", "-c", "import platform; print(platform.python_version())"]
        ran = (await box.exec(asked, timeout=60)).stdout.strip()
    finally:
        await box.close()
    assert re.fullmatch(r"3\.\d+\.\d+", ran)
    assert box.runtime == f"python {ran}"


@pytest.mark.docker
def test_a_python_that_is_not_there_is_refused_before_any_work(
    demo: Path, docker_engine: None
) -> None:
    result = CliRunner().invoke(
        app,
        ["fix", "DEMO-1", "--repo", str(demo), "--sandbox", "docker"],
        env={"CASCADE_SANDBOX__PYTHON": '"3.99"', "OPENAI_API_KEY": "sk-test"},
    )
    assert result.exit_code == 2, result.output  # the configuration asks what cannot be had
    assert "Python 3.99 ([sandbox] python): there is no sandbox image for it" in result.stderr
    assert "3.9 (Debian bullseye), 3.11 (Debian bookworm), 3.13 (Debian trixie)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (demo / ".cascade" / "runs").exists()  # no run was started

    from sandboxes.image import build_image

    lines: list[str] = []
    with pytest.raises(SandboxError) as caught:
        build_image(SandboxConfig(python="3.99"), progress=lines.append)
    assert "Python 3.99 cannot be had here" in str(caught.value)
    assert "3.13 (Debian trixie)" in str(caught.value)
    assert not any("building" in line for line in lines)


def _wheel(dest: Path, name: str, requires: list[str]) -> None:
    import zipfile

    requires_dist = "".join(f"Requires-Dist: {r}\n" for r in requires)
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{requires_dist}\nlong text\n"
    with zipfile.ZipFile(dest / f"{name}-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{name}-1.0.dist-info/METADATA", meta)


def test_wheels_a_python_older_than_the_hosts_needs_are_found(tmp_path: Path) -> None:
    from sandboxes.image_wheels import unmet

    # pytest's own metadata: pip on a 3.11 host leaves these out for a 3.9 image
    _wheel(tmp_path, "pytest", ['tomli>=1; python_version < "3.11"', "pluggy<2,>=1.5",
                                'colorama>=0.4; sys_platform == "win32"',
                                'hypothesis>=3.56; extra == "dev"'])  # fmt: skip
    _wheel(tmp_path, "pluggy", [])
    old = {"python_version": "3.9", "python_full_version": "3.9.2", "extra": ""}
    new = {"python_version": "3.13", "python_full_version": "3.13.5", "extra": ""}
    assert unmet(tmp_path, old) == ["tomli>=1"]
    assert unmet(tmp_path, new) == []
    _wheel(tmp_path, "tomli", [])
    assert unmet(tmp_path, old) == []
