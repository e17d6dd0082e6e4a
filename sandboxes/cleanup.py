"""Garbage collection of sandbox containers and volumes: those past their TTL, stopped, or
opened by a process of this host that no longer exists (a crashed or killed run), and those of
this very process when it is about to exit (an interrupted replay); and, on request, of
per-repository environment images no container uses."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from typing import Any

from docker.errors import APIError, NotFound

from cascade.errors import SandboxError
from sandboxes.docker_api import (
    CREATED_LABEL,
    OWNER_LABEL,
    RUN_LABEL,
    SETUP_LABEL,
    TTL_LABEL,
    connect,
)

log = logging.getLogger(__name__)


def collect_garbage(client: Any, *, now: float | None = None) -> list[str]:
    """Remove orphaned sandbox containers, then orphaned volumes; return what went, described."""
    now = time.time() if now is None else now
    removed: list[str] = []
    label = {"label": RUN_LABEL}
    for container in client.containers.list(all=True, filters=label):
        if not container.labels.get(RUN_LABEL):
            continue  # a blank label inherited from an environment image: not a sandbox
        stopped = container.status in ("exited", "dead")
        # A stopped container a live process of this host owns is still its own: a `[sandbox]
        # setup` build stops its container to commit it, and removes it after.
        why = _orphaned(container.labels, now) or (
            "stopped" if stopped and not _owned_here(container.labels) else ""
        )
        if why and _remove(container):
            removed.append(f"container {container.name} ({why})")
    for volume in client.volumes.list(filters=label):
        why = _orphaned(volume.attrs.get("Labels") or {}, now)
        if not why:
            continue
        try:
            volume.remove(force=True)
        except NotFound:
            continue
        except APIError:  # still used by a container kept above: next time
            continue
        removed.append(f"volume {volume.name} ({why})")
    return removed


def _remove(container: Any) -> bool:
    """Remove `container`; False when it is gone already or another process (a second cascade
    collecting the same orphans) is removing it right now (Docker's 409 "already in progress")."""
    try:
        container.remove(force=True)
    except NotFound:
        return False
    except APIError as exc:
        if exc.status_code == 409 and "in progress" in str(exc.explanation or exc):
            return False
        raise
    return True


def collect_left_behind() -> list[str]:
    """What a killed run of this host left (its containers and volumes), removed when a new run
    starts: a SIGKILLed `cascade replay` or `fix` cannot clean up after itself, and a resume
    should not leave its predecessor's sandboxes running until their ttl. Never fails a run: an
    engine that does not answer is the opener's to report."""
    try:
        client = connect(timeout=10)
    except SandboxError:
        return []
    try:
        return collect_garbage(client)
    except (APIError, OSError) as exc:
        log.warning("could not collect sandboxes left by earlier runs: %s", exc)
        return []
    finally:
        client.close()


def this_owner() -> str:
    """The owner label (`<host>:<pid>`) this process puts on what it opens."""
    return f"{socket.gethostname()}:{os.getpid()}"


def own_containers() -> list[str]:
    """The names of the sandbox containers this process opened that still exist; none when no
    engine answers (then there is nothing to stop either)."""
    try:
        client = connect(timeout=10)
    except SandboxError:
        return []
    try:
        mine = {"label": f"{OWNER_LABEL}={this_owner()}"}
        return sorted(str(c.name) for c in client.containers.list(all=True, filters=mine))
    except (APIError, OSError) as exc:
        log.warning("could not list this process's sandboxes: %s", exc)
        return []
    finally:
        client.close()


def collect_own() -> list[str]:
    """Remove every container and volume this process opened, for a process about to exit (an
    interrupted replay): its runs' own cleanup closes what they opened, this removes whatever a
    cut-short open or an abandoned thread left. Return what went, described."""
    try:
        client = connect(timeout=10)
    except SandboxError:
        return []
    removed: list[str] = []
    mine = {"label": f"{OWNER_LABEL}={this_owner()}"}
    try:
        for container in client.containers.list(all=True, filters=mine):
            with contextlib.suppress(NotFound):
                container.remove(force=True)
                removed.append(f"container {container.name}")
        for volume in client.volumes.list(filters=mine):
            with contextlib.suppress(NotFound):
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
    except (APIError, OSError) as exc:
        log.warning("could not remove this process's sandboxes: %s", exc)
    finally:
        client.close()
    return removed


def collect_env_images(client: Any) -> list[str]:
    """Remove every `cascade-env` image no container (running or not) uses; return what went.
    Environments are caches: one removed here is rebuilt by the next sandbox that needs it."""
    used = {container.attrs.get("Image") for container in client.containers.list(all=True)}
    removed: list[str] = []
    for image in client.images.list(filters={"label": f"{SETUP_LABEL}=1"}):
        if image.id in used:
            continue
        try:  # each tag, then the id: removing an id with several tags needs force
            for tag in image.tags:
                client.images.remove(tag)
            if not image.tags:
                client.images.remove(image.id)
        except NotFound:
            pass
        except APIError:  # a container started meanwhile, or a child image: next time
            continue
        removed.append(f"image {', '.join(image.tags) or image.short_id}")
    return removed


def _orphaned(labels: dict[str, str], now: float) -> str:
    """Why an item labelled like this is garbage, or '' while its run may still need it."""
    try:
        created, ttl = float(labels.get(CREATED_LABEL, "0")), float(labels.get(TTL_LABEL, "0"))
    except ValueError:
        return "unreadable labels"
    if created + ttl < now:
        return "older than its ttl"
    host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return f"run {labels.get(RUN_LABEL, '?')} is gone"
    return ""


def _owned_here(labels: dict[str, str]) -> bool:
    """Opened by a process of this host that is still running."""
    host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
