"""Shadow ladders for counterfactual baselines: the same tasks, gate and sandbox as the batch,
run with another ladder into `<batch>/shadow/<name>/`. `strongest` means the batch's own last
rung alone; `all`, every rung alone, each in its own folder (`rung-<name>`, the last one
`strongest-<name>`, so a `--shadow strongest` already run is resumed, not paid for twice) — what
`cascade report --ladders` projects every ladder from; a TOML file supplies its own `[[ladder]]`.
Nothing a shadow produces is applied."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cascade.config import CascadeConfig, RungConfig
from cascade.errors import ConfigError
from cascade.replay.batch import safe_name
from cascade.wiring.settings import LoadedConfig

STRONGEST = "strongest"
ALL = "all"


def shadow_configs(loaded: LoadedConfig, spec: str) -> list[tuple[str, LoadedConfig]]:
    """(each shadow's folder name, the batch's config with that shadow's ladder), in the order
    they run: for `all`, the batch's rungs cheapest first."""
    if spec != ALL:
        return [shadow_config(loaded, spec)]
    ladder = loaded.config.ladder
    out = []
    for rung in ladder:
        name = f"{STRONGEST}-{rung.name}" if rung is ladder[-1] else f"rung-{rung.name}"
        out.append((_folder(name), _with(loaded, (rung,), loaded.config_dir, spec)))
    return out


def shadow_config(loaded: LoadedConfig, spec: str) -> tuple[str, LoadedConfig]:
    """(the shadow's folder name, the batch's config with the shadow's ladder)."""
    cfg = loaded.config
    if spec == STRONGEST:
        ladder: tuple[RungConfig, ...] = (cfg.ladder[-1],)
        name, config_dir = _folder(f"{STRONGEST}-{cfg.ladder[-1].name}"), loaded.config_dir
    else:
        path = Path(spec).expanduser().resolve()
        ladder = _read_ladder(path)
        name, config_dir = _folder(path.stem) or "shadow", path.parent
    return name, _with(loaded, ladder, config_dir, spec)


def _folder(name: str) -> str:
    """A folder name; two names that flatten alike stay apart (a digest suffix)."""
    return safe_name(name)


def _with(
    loaded: LoadedConfig, ladder: tuple[RungConfig, ...], config_dir: Path, spec: str
) -> LoadedConfig:
    cfg = loaded.config
    data = {**cfg.model_dump(), "ladder": ladder, "workflows": _on(ladder, cfg, spec)}
    data["routing"] = {"rules": []}  # they only move a task on the batch's ladder
    try:
        config = CascadeConfig.model_validate(data)
    except ValidationError as exc:
        names = " → ".join(r.name for r in ladder)
        raise ConfigError(f"--shadow {spec}: the ladder {names} is invalid: {exc}") from exc
    # The shadow's cassettes are found from its own file's folder.
    return dataclasses.replace(loaded, config=config, config_dir=config_dir)


def _on(ladder: tuple[RungConfig, ...], cfg: CascadeConfig, spec: str) -> list[dict[str, Any]]:
    """The workflows on the shadow's ladder: their gate, proof, review and budget hold; where
    they start and stop does not (the shadow climbs its own ladder). A privacy lane keeps the
    rungs of its own that the shadow has, each the same model as in the batch's ladder; a
    shadow with none of them is refused, never run on a rung the lane forbids."""
    names = {r.name for r in ladder}
    # Where a rung's tasks go: its model and its endpoint (a cassette is where replies come from).
    models = {r.name: (r.model, r.api_base, r.cassette) for r in cfg.ladder}
    out = []
    for flow in cfg.workflows:
        data = flow.model_dump()
        lane = tuple(data["ladder"]["rungs"])
        kept = tuple(r for r in lane if r in names)
        if lane and not kept:
            raise ConfigError(
                f"--shadow {spec}: workflow {flow.name!r} is a privacy lane (its tasks may use "
                f"only {', '.join(lane)}) and the shadow ladder "
                f"({' → '.join(r.name for r in ladder)}) has none of them. Replay the lane's "
                "issues in a backlog of their own, or give --shadow a TOML ladder that keeps "
                "one of its rungs"
            )
        for rung in ladder:
            ours = models.get(rung.name)
            if rung.name in kept and (rung.model, rung.api_base, rung.cassette) != ours:
                raise ConfigError(
                    f"--shadow {spec}: rung {rung.name!r} is in workflow {flow.name!r}'s privacy "
                    f"lane with model {ours[0] if ours else None} at {ours[1] if ours else None}, "
                    f"and the shadow's is {rung.model} at {rung.api_base}: a lane is never "
                    "widened by a rung's name; name the shadow's rung apart"
                )
        data["ladder"] = {"rungs": kept}
        if data["review_rung"] not in names:
            data["review_rung"] = None
        out.append(data)
    return out


def _read_ladder(path: Path) -> tuple[RungConfig, ...]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"--shadow {path}: no such file (give a TOML file with [[ladder]], or {STRONGEST!r})"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--shadow {path}: not a readable TOML file: {exc}") from exc
    section = doc.get("tool", {}).get("cascade", doc) if path.name == "pyproject.toml" else doc
    rungs = section.get("ladder")
    if not isinstance(rungs, list) or not rungs:
        raise ConfigError(f"--shadow {path}: no [[ladder]] rungs in this file")
    try:
        return tuple(RungConfig.model_validate(r) for r in rungs)
    except ValidationError as exc:
        raise ConfigError(f"--shadow {path}: a rung is invalid: {exc}") from exc
