"""Where a report's numbers come from: when it was written, by which cascade and litellm, and where
each rung's prices came from (the rung's own `input/output_cost_per_token` in the config the batch
ran with, else litellm's cost map, the way `LitellmModel` prices a call)."""

from __future__ import annotations

import logging
import os
import tomllib
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cascade import __version__
from cascade.config import default_ladder

log = logging.getLogger(__name__)

CASSETTE_PREFIX = "replay/"  # a cassette rung: litellm's map has no price for it
PER_MTOK = 1_000_000


def provenance(
    ladder: list[str], models: dict[str, str], config_files: list[str]
) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cascade_version": _version("cascade-engine", __version__),
        "litellm_version": _version("litellm", "not installed"),
        "prices": [_price(rung, models.get(rung, ""), config_files) for rung in ladder],
    }


def _version(distribution: str, fallback: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return fallback


def _price(rung: str, model: str, config_files: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"rung": rung, "model": model}
    configured, where, known = _configured(rung, config_files)
    in_price, out_price = (
        configured.get("input_cost_per_token"),
        configured.get("output_cost_per_token"),
    )
    if in_price is not None and out_price is not None:
        return {**row, "source": "configured", "where": where, **_per_mtok(in_price, out_price)}
    if not known:
        return {**row, "source": "unknown", "where": where, **_per_mtok(None, None)}
    map_in, map_out, map_name = _litellm_prices(model)
    source = "litellm" if in_price is None and out_price is None else "configured + litellm"
    return {
        **row,
        "source": source,
        "where": map_name if source == "litellm" else f"{where}; the rest from {map_name}",
        **_per_mtok(in_price if in_price is not None else map_in,
                    out_price if out_price is not None else map_out),
    }  # fmt: skip


def _per_mtok(in_price: float | None, out_price: float | None) -> dict[str, float | None]:
    return {
        "input_usd_per_mtok": None if in_price is None else round(in_price * PER_MTOK, 6),
        "output_usd_per_mtok": None if out_price is None else round(out_price * PER_MTOK, 6),
    }


def _configured(rung: str, config_files: list[str]) -> tuple[dict[str, Any], str, bool]:
    """The rung's price settings in the first config that names it, where that is, and whether
    it is known at all; the defaults when a batch ran without a config file. The file is read
    as it is now."""
    for name in config_files:
        if not name:
            for default in default_ladder():
                if default.name == rung:
                    return default.model_dump(), "cascade's default ladder", True
            continue
        path = Path(name)
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            return {}, f"{path} cannot be read now ({type(exc).__name__})", False
        if path.name == "pyproject.toml":
            doc = doc.get("tool", {}).get("cascade", {})
        for entry in doc.get("ladder", []):
            if isinstance(entry, dict) and entry.get("name") == rung:
                return entry, str(path), True
    if not config_files:
        return {}, "the runs do not name the config they ran with", False
    return {}, f"no config names the rung {rung}", False


def _litellm_prices(model: str) -> tuple[float | None, float | None, str]:
    """The price per token in litellm's cost map (imported only here: it costs seconds)."""
    local = os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP", "").lower() in ("1", "true", "yes")
    name = f"litellm's {'local' if local else 'live'} cost map"
    if not model or model.startswith(CASSETTE_PREFIX):
        return None, None, f"{name} (no entry for {model or 'an unnamed model'}: priced $0)"
    try:
        import litellm

        litellm.suppress_debug_info = True  # no "Provider List" banner for an unknown model
        info = litellm.get_model_info(model)
    except Exception as exc:  # litellm raises for a model it does not map
        log.debug("no litellm price for %s: %s", model, exc)
        return None, None, f"{name} (no entry for {model}: priced $0)"
    return info.get("input_cost_per_token"), info.get("output_cost_per_token"), name


def price_summary(prices: list[dict[str, Any]]) -> str:
    """'cheap, strong: configured in replay.toml' — rungs grouped by where their prices are."""
    groups: dict[str, list[str]] = {}
    for row in prices:
        where = row["where"]
        if row["source"] == "configured":
            where = f"configured per rung in {Path(where).name if '/' in where else where}"
        elif row["source"] == "unknown":
            where = f"unknown ({where})"
        groups.setdefault(where, []).append(row["rung"])
    return "; ".join(f"{', '.join(rungs)}: {where}" for where, rungs in groups.items()) or "—"
