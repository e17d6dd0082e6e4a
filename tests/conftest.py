import os
from functools import cache

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@cache
def docker_problem() -> str:
    """Why the Docker tests cannot run here, or "" when an engine and the sandbox image are up."""
    from cascade.config import SandboxConfig
    from cascade.errors import SandboxError
    from sandboxes.engine import connect

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
