"""Load the configuration in a declared order, remembering where every value came from:
defaults < `[tool.cascade]` in pyproject.toml, or cascade.toml (or --config)
< CASCADE_* env < command-line flags."""

from __future__ import annotations

import json
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cascade.config import CascadeConfig
from cascade.errors import ConfigError, UsageError

log = logging.getLogger(__name__)

ENV_PREFIX = "CASCADE_"
DEFAULT = "default"


@dataclass(frozen=True)
class LoadedConfig:
    config: CascadeConfig
    repo: Path
    config_dir: Path  # relative paths in the config (cassettes) are resolved from here
    config_file: Path | None
    origins: dict[str, str] = field(default_factory=dict)  # dotted key -> where it came from

    def origin(self, key: str) -> str:
        while key:
            if key in self.origins:
                return self.origins[key]
            key = key.rpartition(".")[0]
        return DEFAULT

    def path(self, relative: str, base: Path | None = None) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (base or self.repo) / p


OLD_PYTEST, NEW_PYTEST = "gate.pytest.", "gate.options.pytest."


def load_config(
    repo: Path,
    config_file: Path | None = None,
    overrides: Mapping[str, tuple[Any, str]] | None = None,
    environ: Mapping[str, str] | None = None,
    start: Path | None = None,
) -> LoadedConfig:
    """`overrides` maps dotted keys to (value, origin), e.g. ("local", "--sandbox"). The config
    file is looked for from `start` (default `repo`) up to the repository's root."""
    if not repo.is_dir():
        raise UsageError(f"--repo {repo}: no such folder")
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    chosen, file_data = _read_file(start or repo, config_file)
    log.info("configuration: %s", chosen if chosen is not None else f"defaults (none in {repo})")
    if chosen is not None:
        _merge(data, file_data, origins, str(chosen), ())
    env = os.environ if environ is None else environ
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        # Only a name that starts with a section is a setting: CASCADE_TOKEN or CASCADE_HOME,
        # set for something else, is not cascade's to refuse. A misspelt key inside a section
        # is still an error, with the variable named.
        if _is_setting(keys):
            _set(data, keys, _env_value(env[name]), origins, f"env {name}")
        elif len(keys) > 1:
            log.warning("%s is not a cascade setting (no [%s] section): ignored", name, keys[0])
        elif hint := _double_underscore_hint(keys[0]):
            log.warning("%s is not a cascade setting: ignored; did you mean %s?", name, hint)
    for dotted, (value, origin) in (overrides or {}).items():
        _set(data, dotted.split("."), value, origins, origin)
    for key in [k for k in origins if k.startswith(OLD_PYTEST)]:
        # GateConfig folds the older `[gate.pytest]` into `[gate.options.pytest]`: keep where
        # each value came from (a key set in both keeps the newer table's value and origin).
        origins.setdefault(NEW_PYTEST + key.removeprefix(OLD_PYTEST), origins[key])
    try:
        config = CascadeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origins, chosen, data)) from exc
    return LoadedConfig(
        config=config,
        repo=repo,
        config_dir=chosen.parent if chosen else repo,
        config_file=chosen,
        origins=origins,
    )


def _is_setting(keys: list[str]) -> bool:
    """CASCADE_<SECTION>__<KEY>, or a whole top-level value that is not a section
    (CASCADE_LADDER as JSON); a bare section name (CASCADE_RUN) is someone else's."""
    field = CascadeConfig.model_fields.get(keys[0])
    if field is None:
        return False
    section = isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    return len(keys) > 1 or not section


def _double_underscore_hint(key: str) -> str | None:
    """CASCADE_SANDBOX_BACKEND for CASCADE_SANDBOX__BACKEND: a section, one underscore, a key."""
    for section, info in CascadeConfig.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        rest = key.removeprefix(f"{section}_")
        if rest != key and rest in model.model_fields:
            return f"{ENV_PREFIX}{section.upper()}__{rest.upper()}"
    return None


def repo_root(path: Path) -> Path:
    """The repository `path` is in: the nearest folder, `path` or above it, that holds `.git`
    (a folder, or the file of a worktree); `path` itself when there is none."""
    for folder in (path, *path.parents):
        if (folder / ".git").exists():
            return folder
    return path


def _read_file(repo: Path, config_file: Path | None) -> tuple[Path | None, dict[str, Any]]:
    """The config file given, else the nearest `cascade.toml` or `pyproject.toml` with a
    `[tool.cascade]` table from `repo` up to its repository's root (as ruff and pytest find
    theirs); in one folder, cascade.toml wins."""
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        return config_file, _parse_toml(config_file, config_file.name == "pyproject.toml")
    root = repo_root(repo)
    for folder in (repo, *repo.parents):
        own = folder / "cascade.toml"
        if own.is_file():
            return own, _parse_toml(own, False)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            section = _parse_toml(pyproject, True)
            if section:
                return pyproject, section
        if folder == root:
            break
    return None, {}


def _parse_toml(path: Path, tool_section: bool) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
    if tool_section:
        section = doc.get("tool", {}).get("cascade", {})
        return section if isinstance(section, dict) else {}
    return doc


def _merge(
    into: dict[str, Any],
    new: Mapping[str, Any],
    origins: dict[str, str],
    origin: str,
    prefix: tuple[str, ...],
) -> None:
    for key, value in new.items():
        path = (*prefix, key)
        if isinstance(value, dict) and isinstance(into.get(key), dict | None):
            _merge(into.setdefault(key, {}), value, origins, origin, path)
        else:
            into[key] = value
            origins[".".join(path)] = origin


def _set(
    data: dict[str, Any], keys: list[str], value: Any, origins: dict[str, str], origin: str
) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value
    origins[".".join(keys)] = origin


def _env_value(raw: str) -> Any:
    """JSON when it parses (numbers, booleans, lists, the ladder), else the plain string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _explain(
    exc: ValidationError, origins: dict[str, str], chosen: Path | None, data: Mapping[str, Any]
) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = _origin_of(loc, origins) or (str(chosen) if chosen else DEFAULT)
        owner, loc = _workflow_of(loc, data)
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{owner}unknown key `{key}` in {where}")
        else:
            said = str(err["msg"]).removeprefix("Value error, ")
            at = f"`{key}` in {where}: " if loc else ""
            lines.append(f"{owner}{at}{said}" + ("" if loc else f" (in {where})"))
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _workflow_of(loc: list[str], data: Mapping[str, Any]) -> tuple[str, list[str]]:
    """`workflows.2.gate.x` reads as `workflow 'security': ... gate.x`: the entry by its name."""
    if len(loc) < 2 or loc[0] != "workflows" or not loc[1].isdigit():
        return "", loc
    flows = data.get("workflows")
    entry = flows[int(loc[1])] if isinstance(flows, list) and int(loc[1]) < len(flows) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    label = repr(name) if isinstance(name, str) and name else f"#{int(loc[1]) + 1} (no name)"
    return f"workflow {label}: ", loc[2:]


def _origin_of(loc: list[str], origins: dict[str, str]) -> str | None:
    parts = [p for p in loc if not p.isdigit()]
    while parts:
        key = ".".join(parts)
        if key in origins:
            return origins[key]
        parts.pop()
    return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaves of a config dump, lists of tables kept whole (for `config show`)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(flatten(child, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}
