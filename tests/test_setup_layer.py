"""Per-repository environments (`[sandbox] setup`): built once into a `cascade-env:<key>` image,
reused while the dependency files stay the same, rebuilt when one changes; the key itself is
checked without Docker. Docker tests skip loudly without an engine, except in CI (conftest)."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest

from cascade.config import SandboxConfig
from cascade.errors import SandboxError
from sandboxes.cleanup import this_owner
from sandboxes.docker_api import OWNER_LABEL, RUN_LABEL, SETUP_LABEL, VENV, DockerOptions, connect
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.setup_key import dependency_files, environment_key
from sandboxes.setup_layer import ensure_env_image

IMAGE = SandboxConfig().image
RUNS = f"{VENV}/setup-runs.txt"  # one line per time the setup commands ran


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _commit(repo: Path, files: dict[str, str], message: str = "change") -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def _wheel() -> bytes:
    """A minimal pure-Python wheel, so that setup is a real `pip install` with no index."""
    files = {
        "tinypkg/__init__.py": b"VALUE = 42\n",
        "tinypkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
        "tinypkg-0.1.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\n"
    files["tinypkg-0.1.dist-info/RECORD"] = (record + "tinypkg-0.1.dist-info/RECORD,,\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return out.getvalue()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(tmp_path, "init", "-q", str(root))
    (root / "vendor").mkdir()
    (root / "vendor" / "tinypkg-0.1-py3-none-any.whl").write_bytes(_wheel())
    _commit(
        root,
        {
            "pyproject.toml": '[project]\nname = "demo"\nversion = "0.1"\n',
            "requirements.txt": "tinypkg==0.1\n",
            "src/x.py": "X = 1\n",
        },
        "init",
    )
    return root


def _setup(*extra: str) -> tuple[str, ...]:
    """Setup commands unique to this test run, so no image of an earlier run is reused."""
    return (
        "python -m pip install --no-index --no-deps vendor/tinypkg-0.1-py3-none-any.whl",
        f"echo {uuid.uuid4().hex} >> {RUNS}",
        *extra,
    )


async def _run(box: DockerSandbox, script: str) -> str:
    result = await box.exec(["sh", "-c", script], timeout=60)
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.docker
@pytest.mark.anyio
async def test_setup_runs_and_its_effect_is_in_the_sandbox(repo: Path, env_images: None) -> None:
    leak = "touch setup-leak && mkdir -p build && touch build/junk src/junk.py"
    config = SandboxConfig(setup=_setup(leak))
    box = await DockerSandbox.open(repo, "HEAD", config)
    try:
        assert await _run(box, "python -c 'import tinypkg; print(tinypkg.VALUE)'") == "42\n"
        assert len((await _run(box, f"cat {RUNS}")).splitlines()) == 1
        # what setup left in its workspace stays out of the sandbox's: only git's tree is there
        assert await _run(box, "git status --porcelain --ignored") == ""
        listing = sorted((await _run(box, "ls -A")).split())
        assert listing == [".git", "pyproject.toml", "requirements.txt", "src", "vendor"]
        client = connect()
        try:
            base_id = client.images.get(IMAGE).id
            attrs = client.containers.get(box.name).attrs
            image_labels = client.images.get(box.image_id).labels
        finally:
            client.close()
        assert box.image_id != base_id
        assert attrs["Image"] == box.image_id
        assert attrs["HostConfig"]["NetworkMode"] == "none"  # setup had the network, not this
        assert attrs["HostConfig"]["ReadonlyRootfs"] is True
        # the setup container's run label is blanked in the image, the sandbox has its own
        assert image_labels[SETUP_LABEL] == "1" and image_labels[RUN_LABEL] == ""
        assert attrs["Config"]["Labels"][RUN_LABEL] != ""
    finally:
        await box.close()


@pytest.mark.docker
@pytest.mark.anyio
async def test_unchanged_dependencies_reuse_the_image(
    repo: Path, env_images: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Without git metadata: with it, the commit is part of the key (tests/test_setup_git.py).
    config = SandboxConfig(setup=_setup(), setup_git=False)
    caplog.set_level(logging.INFO, logger="sandboxes")  # the package: whichever module logs it
    first = await DockerSandbox.open(repo, "HEAD", config)
    await first.close()
    assert "setup: building environment" in caplog.text
    caplog.clear()
    _commit(repo, {"src/x.py": "X = 2\n"})  # not a dependency file
    second = await DockerSandbox.open(repo, "HEAD", config)
    try:
        assert second.image_id == first.image_id
        assert "present, reused" in caplog.text and "building" not in caplog.text
        assert len((await _run(second, f"cat {RUNS}")).splitlines()) == 1
        assert await _run(second, "cat src/x.py") == "X = 2\n"
    finally:
        await second.close()


@pytest.mark.docker
def test_a_changed_dependency_file_rebuilds(repo: Path, env_images: None) -> None:
    client = connect(timeout=300)
    setup, options = _setup(), DockerOptions()
    try:
        first = ensure_env_image(client, IMAGE, setup, repo, "HEAD", options=options)
        again = ensure_env_image(client, IMAGE, setup, repo, "HEAD", options=options)
        _commit(repo, {"requirements.txt": "tinypkg==0.1\n# pinned\n"})
        changed = ensure_env_image(client, IMAGE, setup, repo, "HEAD", options=options)
    finally:
        client.close()
    assert first.built and not again.built and again.image_id == first.image_id
    assert changed.built and changed.tag != first.tag and changed.image_id != first.image_id


@pytest.mark.docker
@pytest.mark.anyio
async def test_a_failing_setup_command_is_named(repo: Path, env_images: None) -> None:
    failing = "echo about-to-fail >&2; exit 3"
    config = SandboxConfig(setup=(*_setup(), failing, "echo never-reached"))
    with pytest.raises(SandboxError) as caught:
        await DockerSandbox.open(repo, "HEAD", config)
    message = str(caught.value)
    assert repr(failing) in message and "exit 3" in message and "about-to-fail" in message
    client = connect()
    # Neither the setup container nor its volumes are left behind: those this process made (the
    # owner label), whatever another process on the engine is building meanwhile.
    mine = {"name": "cascade-setup-", "label": f"{OWNER_LABEL}={this_owner()}"}
    try:
        assert client.containers.list(all=True, filters=mine) == []
        assert client.volumes.list(filters=mine) == []
    finally:
        client.close()


def test_the_key_covers_dependency_files_only(repo: Path) -> None:
    def key(base_id: str = "sha256:base", setup: tuple[str, ...] = ("pip install -e .",)) -> str:
        return environment_key(base_id, setup, repo, "HEAD")

    start = key()
    assert key() == start
    _commit(repo, {"src/x.py": "X = 2\n", "src/deep/a/b/requirements.txt": "too deep\n"})
    assert key() == start  # not a dependency file, or deeper than two directories
    (repo / "pyproject.toml").write_text("# uncommitted\n")
    assert key() == start  # the working tree is never read
    assert key(base_id="sha256:other") != start
    assert key(setup=("pip install .",)) != start
    _commit(repo, {"requirements/dev.txt": "x\n", "a/b/constraints-ci.txt": "y\n"})
    assert dependency_files(repo, "HEAD") == [
        "a/b/constraints-ci.txt",
        "pyproject.toml",
        "requirements.txt",
        "requirements/dev.txt",
    ]
    more = key()
    assert more != start
    _commit(repo, {".cascade/requirements.txt": "hidden\n"})
    assert key() == more  # never in a workspace, so not part of its environment
    _commit(repo, {"libs/core/setup.py": "x = 1\n"})
    assert key() != more
