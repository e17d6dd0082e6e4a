"""Every setting as `cascade config show` lists it: the resolved value and where it came from,
the options of each configured evaluator and of the sandbox backend included (their defaults
come from the option models that live beside each part, which also refuse a misspelt one, in
`[gate.options]` or in a workflow's gate)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cascade.config import SandboxConfig
from cascade.wiring.registry import build_evaluator
from cascade.wiring.settings import LoadedConfig, flatten
from cascade.wiring.workflows import workflows_of


def all_settings(loaded: LoadedConfig) -> dict[str, tuple[Any, str]]:
    """Dotted key -> (value, origin), sorted by key. An option nobody set shows its default; a
    misspelt one is the ConfigError a run would meet."""
    cfg = loaded.config
    values = flatten(cfg.model_dump(mode="json"))
    for key in [k for k in values if k.startswith(("gate.options.", "sandbox.options."))]:
        del values[key]  # listed below, each option with its default
    for name in cfg.gate.evaluators:
        options = getattr(build_evaluator(name, cfg.gate), "config", None)
        if isinstance(options, BaseModel):
            values.update(flatten(options.model_dump(mode="json"), f"gate.options.{name}"))
    workflows_of(loaded)  # a workflow's bad evaluator or option is the error a run would meet
    values.update(flatten(_sandbox_options(cfg.sandbox), "sandbox.options"))
    values.pop("gate.options", None)
    values.pop("sandbox.options", None)
    return {key: (values[key], loaded.origin(key)) for key in sorted(values)}


def _sandbox_options(config: SandboxConfig) -> dict[str, Any]:
    """The Docker backend's options with their defaults (what `docker` and `auto` run with);
    another backend's options as given."""
    if config.backend not in ("docker", "auto"):
        return dict(config.options)
    from sandboxes.docker_api import DockerOptions

    return DockerOptions.from_config(config).model_dump(mode="json")
