"""Builds what config names: evaluators, the sandbox backend, the issue source. A name is an
entry point (`cascade.evaluators`, `cascade.sandboxes`, `cascade.sources`) or `module:Class`.
The engine never imports an evaluator or sandbox by name; this module does it for it."""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cascade.config import CascadeConfig, GateConfig, SandboxConfig
from cascade.core.gate import Gate
from cascade.errors import ConfigError, SandboxError
from cascade.protocols import (
    ConfigurableEvaluatorType,
    ConfigurableSourceType,
    Evaluator,
    IssueSource,
    Sandbox,
    SandboxOpener,
)
from cascade.validation import describe

log = logging.getLogger(__name__)

GROUPS = {
    "evaluator": "cascade.evaluators",
    "sandbox": "cascade.sandboxes",
    "source": "cascade.sources",
    "model": "cascade.models",
}


def load(kind: str, name: str) -> Any:
    """The object an entry-point name or a `module:attr` path names, or a ConfigError that lists
    what is available."""
    group = GROUPS[kind]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{kind} {name!r} cannot be imported: {exc}") from exc
    found = _entry_points(group)
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise ConfigError(
            f"unknown {kind} {name!r} (known: {known}; or give a `module:Class` path)"
        )
    try:
        return found[name].load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{kind} {name!r} ({found[name].value}) cannot be loaded: {exc}") from exc


@functools.cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    """A group's entry points, read once a process (each read scans every installed package)."""
    return {ep.name: ep for ep in entry_points(group=group)}


def build_gate(gate: GateConfig) -> Gate:
    return Gate([build_evaluator(name, gate) for name in gate.evaluators])


def build_evaluator(
    name: str, gate: GateConfig, *, options: dict[str, Any] | None = None, where: str = ""
) -> Evaluator:
    """`cls(cls.config_model.model_validate(options))`, options from `[gate.options.<name>]`
    (or given, from `where`); a class that names no config model (`ConfigurableEvaluatorType`)
    takes none."""
    cls = load("evaluator", name)
    where = where or f"[gate.options.{name}]"
    options = dict(gate.options.get(name, {}) if options is None else options)
    if not isinstance(cls, ConfigurableEvaluatorType):
        if options:
            raise ConfigError(f"evaluator {name!r} takes no options, but {where} set")
        return cls()  # type: ignore[no-any-return]
    try:
        config = cls.config_model.model_validate(options)
    except ValidationError as exc:
        problems = describe(exc, top="``")
        raise ConfigError(f"{where} is invalid: {problems}") from exc
    return cls(config)


REPRODUCTION = "reproduction"  # the evaluator that judges a reproduction test
INHERITED = ("args", "timeout", "test_timeout")  # pytest's, for the reproduction's runs too


def build_reproduction_gate(config: CascadeConfig) -> Gate:
    """The reproduce stage's judge: the reproduction evaluator alone, running pytest with the
    gate's `args`, `timeout` and `test_timeout`, then `[reproduce] options` on top."""
    pytest = config.gate.options.get("pytest", {})
    options = {k: pytest[k] for k in INHERITED if k in pytest} | dict(config.reproduce.options)
    where = "[reproduce] options"
    return Gate([build_evaluator(REPRODUCTION, config.gate, options=options, where=where)])


def choose_backend(config: SandboxConfig) -> str:
    """`docker` (the default) needs an engine that answers now: without one it is a
    SandboxError (exit 3) saying what to do, before any run starts — never a quiet fall back to
    running model-written code on the host. `auto`, chosen explicitly, is Docker whenever an
    engine answers, else the (unsafe, warned-about) local one."""
    if config.backend not in ("docker", "auto"):
        return config.backend
    from sandboxes.docker_api import connect

    try:
        connect(timeout=5).close()
    except SandboxError:
        if config.backend == "docker":
            raise
        log.warning("no Docker engine answers: falling back to the unsafe local sandbox")
        return "local"
    return "docker"


def sandbox_opener(
    config: SandboxConfig,
    backend: str,
    run_id: str = "",
    progress: Callable[[str], None] | None = None,
) -> SandboxOpener:
    """Opens the backend's sandboxes. A backend whose `open` takes `progress` is given it (the
    docker one shows there each line of `[sandbox] setup` when it builds the environment)."""
    cls = load("sandbox", backend)
    extra = {"progress": progress} if progress is not None and _takes(cls.open, "progress") else {}

    async def open_sandbox(repo: Path, commit: str) -> Sandbox:
        box: Sandbox = await cls.open(repo, commit, config, run_id=run_id, **extra)
        return box

    return open_sandbox


def prepare_sandbox(
    config: SandboxConfig,
    backend: str,
    repo: Path,
    commit: str,
    progress: Callable[[str], None] | None = None,
) -> str:
    """The backend's own check before any work, when its class has one (`prepare`: the docker
    one refuses a Python it has no image for, and with `progress` builds the `[sandbox] setup`
    environment in view); a line saying what it chose, or ""."""
    hook = getattr(load("sandbox", backend), "prepare", None)
    if hook is None:
        return ""
    return str(hook(repo, commit, config, progress=progress))


def _takes(func: Any, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):  # no signature to read: pass nothing it may not take
        return False


def build_source(
    config: CascadeConfig, checkout: Path, *, name: str | None = None, **options: Any
) -> IssueSource:
    """The issue source `name` (default `[issues] source`), loaded like any other part. A source
    class with `from_config(issues_config, checkout, **options)` (both built-ins) is built with
    it; any other is built as `cls(config.issues)`."""
    chosen = name or config.issues.source
    cls = load("source", chosen)
    if isinstance(cls, ConfigurableSourceType):
        return cls.from_config(config.issues, checkout, **options)
    if options:
        raise ConfigError(f"issue source {chosen!r} cannot take {', '.join(sorted(options))}")
    return cls(config.issues)  # type: ignore[no-any-return]
