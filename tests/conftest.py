import os
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import FakeOpenAI, serve

# As a user's shell with the project's virtualenv activated: `python3` on PATH is the one with the
# gate's tools, so the local sandbox (which runs the project's Python, not cascade's) finds them.
# The test projects (examples/demo and the like) need nothing else: `make test` builds such a
# virtualenv, `.venv-project` (pytest, coverage, mypy, ruff at cascade's pins, no more), and it
# comes first; without it, cascade's own (whose pytest plugins each test run then loads too).
PROJECT_VENV = Path(__file__).resolve().parent.parent / ".venv-project" / "bin"
_first = [PROJECT_VENV] if (PROJECT_VENV / "python3").is_file() else []
os.environ["PATH"] = os.pathsep.join(
    [*map(str, _first), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@cache
def docker_problem() -> str:
    """Why the Docker tests cannot run here, or "" when an engine and the sandbox image are up."""
    from cascade.config import SandboxConfig
    from cascade.errors import SandboxError
    from sandboxes.docker_api import connect

    image = SandboxConfig().image
    try:
        client = connect(timeout=5)
    except SandboxError as exc:
        return str(exc)
    try:
        client.images.get(image)
    except Exception:
        return f"the sandbox image {image} is missing: run `cascade sandbox build`"
    finally:
        client.close()
    return ""


@pytest.fixture
def docker_engine() -> None:
    """For tests that need real containers: skipped loudly on a machine without an engine, and a
    failure in CI, where Docker tests are never skipped."""
    problem = docker_problem()
    if problem and os.environ.get("CI"):
        pytest.fail(f"Docker tests cannot run in CI: {problem}", pytrace=False)
    if problem:
        pytest.skip(f"DOCKER TESTS SKIPPED: {problem}")


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """An OpenAI-compatible server on loopback, and a dummy key for litellm to send it."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with serve() as fake:
        yield fake


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The bundled demo (examples/demo) as a fresh one-commit git repository: its cassette
    ladder alone, without rung zero (`demo_repo`; `full_demo` has it)."""
    from cascade.testing.demo import demo_repo

    return demo_repo(
        Path(__file__).resolve().parent.parent / "examples" / "demo", tmp_path / "demo"
    )


@pytest.fixture
def full_demo(tmp_path: Path) -> Path:
    """The bundled demo exactly as `make demo` runs it: the repair rung first, DEMO-5 too."""
    from cascade.testing.demo import demo_repo

    root = Path(__file__).resolve().parent.parent
    return demo_repo(root / "examples" / "demo", tmp_path / "demo", rung_zero=True)


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def backend(request: pytest.FixtureRequest) -> str:
    """Both sandbox backends by name, for tests of what holds on each (Docker needs an engine)."""
    if request.param == "docker":
        request.getfixturevalue("docker_engine")
    return str(request.param)


@pytest.fixture
def opener(backend: str) -> Any:
    """Both sandboxes' `open`: the Docker one walks its tree through its pid 1, the local one by
    a script."""
    from sandboxes.docker_sandbox import DockerSandbox
    from sandboxes.local_sandbox import LocalSandbox

    return DockerSandbox.open if backend == "docker" else LocalSandbox.open


@pytest.fixture
def env_images(docker_engine: None) -> Iterator[None]:
    """Removes the `[sandbox] setup` environment images the test made."""
    from sandboxes.docker_api import SETUP_LABEL, connect

    client = connect()
    label = {"label": f"{SETUP_LABEL}=1"}
    before = {image.id for image in client.images.list(filters=label)}
    try:
        yield
    finally:
        for image in client.images.list(filters=label):
            if image.id not in before:
                client.images.remove(image.id, force=True)
        client.close()
