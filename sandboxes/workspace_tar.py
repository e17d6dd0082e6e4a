"""Tars going into and out of a container workspace. Docker keeps each entry's uid/gid and makes
missing parent directories as root, so every entry is re-owned to the sandbox user and every
parent directory gets its own entry: the sandbox can then write everywhere in its workspace, and
git never refuses the tree as of "dubious ownership"."""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Collection, Iterable, Mapping

from cascade.errors import SandboxError


def reown(tar_bytes: bytes, uid: int) -> bytes:
    """The same tree as `tar_bytes` (a `git archive`), owned by uid:uid, parents included."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(tar_bytes)) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        seen: set[str] = set()
        for member in src:
            if not (member.isfile() or member.isdir() or member.issym()):
                continue  # git archive holds nothing else; never carry devices or hard links
            name = relative(member.name)
            if not name:
                continue
            _add_parents(dst, name, uid, seen)
            member.name = name
            _own(member, uid)
            if member.isdir():
                if name in seen:
                    continue
                seen.add(name)
                member.mode = 0o755
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return out.getvalue()


def files_tar(files: Mapping[str, bytes], uid: int, executable: Collection[str] = ()) -> bytes:
    """A tar of new file contents, parent directories included, owned by uid; mode 0755 for the
    paths in `executable` (files that were executable before), else 0644."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        seen: set[str] = set()
        now = time.time()
        for path, data in files.items():
            name = relative(path)
            if not name:
                raise SandboxError(f"not a file path inside the workspace: {path!r}")
            _add_parents(dst, name, uid, seen)
            info = tarfile.TarInfo(name)
            mode = 0o755 if name in executable else 0o644
            info.size, info.mode, info.mtime = len(data), mode, now
            _own(info, uid)
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


def first_file(chunks: Iterable[bytes]) -> tuple[bytes | None, bool]:
    """From a `get_archive` stream: (the file's bytes or None, whether it is a symlink)."""
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.next()
        if member is None:
            return None, False
        if member.issym():
            return None, True
        handle = tar.extractfile(member) if member.isfile() else None
        return (handle.read() if handle is not None else None), False


def relative(path: str) -> str:
    """`path` normalised inside the workspace ('' for its root); SandboxError if it escapes."""
    if path.startswith("/") or "\0" in path:
        raise SandboxError(f"path escapes the workspace: {path}")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        raise SandboxError(f"path escapes the workspace: {path}")
    return "" if norm == "." else norm


def _add_parents(dst: tarfile.TarFile, name: str, uid: int, seen: set[str]) -> None:
    parts = name.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        parent = "/".join(parts[:depth])
        if parent in seen:
            continue
        seen.add(parent)
        info = tarfile.TarInfo(parent)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, time.time()
        _own(info, uid)
        dst.addfile(info)


def _own(info: tarfile.TarInfo, uid: int) -> None:
    info.uid = info.gid = uid
    info.uname = info.gname = ""
