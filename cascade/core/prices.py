"""A rung's price and context window, from its own overrides or litellm's price map. litellm is
imported on first use (never at import) and its map is only read, never fetched here."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from cascade.config import RungConfig
from cascade.core.budget import Price

log = logging.getLogger(__name__)


def load_litellm() -> ModuleType:
    import litellm

    litellm.suppress_debug_info = True  # no banner on a lookup that fails
    return litellm


def map_info(model: str) -> dict[str, Any]:
    """litellm's entry for `model` (input/output price, max_input_tokens), or {} if unknown."""
    try:
        info = load_litellm().get_model_info(model)
    except Exception as exc:  # litellm raises for any model not in its map
        log.debug("no litellm model info for %s: %s", model, exc)
        return {}
    return dict(info) if info else {}


def unit_prices(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token by `litellm.cost_per_token`, or None when unpriced."""
    litellm = load_litellm()
    try:
        prompt, _ = litellm.cost_per_token(model=model, prompt_tokens=1, completion_tokens=0)
        _, completion = litellm.cost_per_token(model=model, prompt_tokens=0, completion_tokens=1)
    except Exception as exc:
        log.debug("no price for %s: %s", model, exc)
        return None
    return float(prompt), float(completion)


def rung_price(rung: RungConfig) -> Price:
    """The rung's override prices where set, the map's for the rest; an unknown price is 0 and
    marked unknown (a local model). The context window: the rung's `max_input_tokens`, else the
    map's. A search rung (`repair/mutate`) calls no provider: it costs 0, known."""
    if rung.is_repair:
        return Price(input_cost_per_token=0.0, output_cost_per_token=0.0, known=True)
    window = rung.max_input_tokens
    in_price, out_price = rung.input_cost_per_token, rung.output_cost_per_token
    mapped = None
    if in_price is None or out_price is None:
        mapped = unit_prices(rung.model)
    if window is None and not rung.is_replay:
        value = map_info(rung.model).get("max_input_tokens")
        window = int(value) if isinstance(value, int | float) and value > 0 else None
    known = mapped is not None or in_price is not None or out_price is not None
    return Price(
        input_cost_per_token=in_price if in_price is not None else (mapped or (0.0, 0.0))[0],
        output_cost_per_token=out_price if out_price is not None else (mapped or (0.0, 0.0))[1],
        max_input_tokens=window,
        known=known,
    )
