"""The Docker sandbox's pieces that need no engine: the container's hardening settings, the
options model, the workspace tars, the Debian mirror lookup, and the no-engine error."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import pytest

from cascade.config import SandboxConfig
from cascade.errors import ConfigError, SandboxError
from sandboxes.base_image import debian_mirror
from sandboxes.container_spec import ENV, container_spec
from sandboxes.docker_api import DockerOptions, connect
from sandboxes.workspace_tar import files_tar, relative, reown


def _spec(**options: object) -> dict[str, object]:
    opts = DockerOptions.from_config(SandboxConfig(options=options))
    return container_spec(opts, "cascade-sandbox:latest", "vol", {"cascade.run": "r1"})


def test_spec_never_weakens_isolation() -> None:
    spec = _spec()
    assert "privileged" not in spec
    assert "cap_add" not in spec
    assert "devices" not in spec
    assert "pid_mode" not in spec
    assert all("unconfined" not in opt for opt in spec["security_opt"])  # type: ignore[attr-defined]
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges" in spec["security_opt"]  # type: ignore[operator]
    assert spec["network_mode"] == "none"
    assert spec["read_only"] is True
    assert not str(spec["user"]).startswith("0")
    assert spec["mem_limit"] == spec["memswap_limit"]
    assert isinstance(spec["pids_limit"], int) and spec["pids_limit"] > 0
    assert isinstance(spec["nano_cpus"], int) and spec["nano_cpus"] > 0
    assert "docker.sock" not in repr(spec)
    assert "volumes" not in spec  # the one mount is the workspace volume


def test_spec_environment_is_fixed_not_the_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASCADE_CANARY_SECRET", "canary-7f3a")
    spec = _spec()
    assert spec["environment"] == ENV
    assert set(ENV) <= {"PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "GIT_CONFIG_NOSYSTEM",
                        "GIT_TERMINAL_PROMPT"}  # fmt: skip
    assert "canary-7f3a" not in repr(spec)


def test_options_follow_the_config() -> None:
    spec = _spec(pids_limit=64, mem_limit="256m", cpus=0.5, tmp_size="64m", ttl=120)
    assert spec["pids_limit"] == 64
    assert spec["mem_limit"] == spec["memswap_limit"] == "256m"
    assert spec["nano_cpus"] == 500_000_000
    assert "size=64m" in spec["tmpfs"]["/tmp"]  # type: ignore[index]
    assert "120" in spec["command"]  # type: ignore[operator]


def test_unknown_or_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="privileged"):
        DockerOptions.from_config(SandboxConfig(options={"privileged": True}))
    with pytest.raises(ConfigError, match="pids_limit"):
        DockerOptions.from_config(SandboxConfig(options={"pids_limit": 0}))


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_reown_gives_every_entry_and_parent_to_the_sandbox_user() -> None:
    src = io.BytesIO()
    with tarfile.open(fileobj=src, mode="w") as tar:
        info = tarfile.TarInfo("a/b/c.txt")  # no directory entries, as some archives have
        info.size, info.uid, info.gid = 2, 0, 0
        tar.addfile(info, io.BytesIO(b"hi"))
    members = _members(reown(src.getvalue(), 10001))
    assert set(members) == {"a", "a/b", "a/b/c.txt"}
    assert all(m.uid == m.gid == 10001 for m in members.values())
    assert members["a"].isdir() and members["a/b"].isdir()


def test_files_tar_and_paths() -> None:
    members = _members(files_tar({"x/y.py": b"1", "z.txt": b""}, 10001))
    assert set(members) == {"x", "x/y.py", "z.txt"}
    assert relative("./a/../b") == "b"
    for bad in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(SandboxError, match="escapes"):
            relative(bad)


def test_debian_mirror_read_from_apt_sources(tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(textwrap.dedent("""\
        Types: deb
        URIs: http://mirror.example/debian-security
        Suites: bookworm-security

        Types: deb
        # a comment
        URIs: http://mirror.example/debian/
        Suites: bookworm bookworm-updates
        Components: main
    """))  # fmt: skip
    (parts / "other.list.disabled").write_text("deb http://elsewhere.example/ x main\n")
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [signed-by=/k.gpg] http://one-line.example/debian bookworm main\n"
    )
    assert debian_mirror(tmp_path) == "http://one-line.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="--base-rootfs"):
        debian_mirror(tmp_path)


def test_unreachable_engine_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(SandboxError, match="--sandbox local"):
        connect(timeout=2)


def test_gc_rules() -> None:
    import os
    import socket

    from sandboxes.cleanup import _orphaned

    me = f"{socket.gethostname()}:{os.getpid()}"
    live = {"cascade.run": "r", "cascade.created": "1000", "cascade.ttl": "100"}
    assert _orphaned({**live, "cascade.owner": me}, now=1050) == ""
    assert "ttl" in _orphaned({**live, "cascade.owner": me}, now=1101)
    dead = f"{socket.gethostname()}:{2**22 + 1}"
    assert "gone" in _orphaned({**live, "cascade.owner": dead}, now=1050)
    assert _orphaned({**live, "cascade.owner": "other-host:1"}, now=1050) == ""
