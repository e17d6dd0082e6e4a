"""Before any sandbox opens or any money is spent: can litellm route every rung's model string,
and are the provider's credentials in the environment? A missing key or an unknown model string
is a configuration error (exit 2) naming the rung and the variable, found in well under a second
instead of after a baseline and a failed call."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from cascade.config import RungConfig
from cascade.errors import ConfigError
from cascade.models.faults import KEY_ENV
from cascade.models.litellm_model import litellm_module

log = logging.getLogger(__name__)


def rung_problem(rung: RungConfig) -> str | None:
    """What stops this rung's calls before they are made, or None. Only a missing `*_API_KEY`
    refuses: other variables litellm lists (a region, a project, an API base with a default) may
    come from elsewhere (an instance role, a local default), so they are a warning."""
    if rung.is_replay or rung.is_repair or _key_is_set(rung.model):
        return None
    litellm = litellm_module()
    try:
        provider = litellm.get_llm_provider(model=rung.model, api_base=rung.api_base)[1]
    except Exception:  # litellm raises its BadRequestError, or others for odd strings
        return (
            f"rung {rung.name!r}: litellm cannot tell which provider serves model "
            f"{rung.model!r}; write it as provider/model (e.g. openai/gpt-4o-mini, "
            "anthropic/claude-sonnet-4-5, ollama/llama3), see docs.litellm.ai/docs/providers"
        )
    found = litellm.validate_environment(model=rung.model, api_base=rung.api_base)
    missing = [str(k) for k in found.get("missing_keys") or ()]
    keys = [k for k in missing if k.endswith("_API_KEY")]
    others = [k for k in missing if k not in keys]
    if others:
        log.warning(
            "rung %r (%s): litellm lists %s as unset; calls fail if the provider needs them",
            rung.name,
            provider,
            ", ".join(others),
        )
    if not keys:
        return None
    local = " (any value does for a local server that checks none)" if rung.api_base else ""
    return (
        f"rung {rung.name!r}: model {rung.model!r} ({provider}) needs {' and '.join(keys)} in "
        f"the environment{local}; set it, or change the rung's model in the [[ladder]]"
    )


# Providers whose calls need nothing but their key (litellm's own check lists no other variable):
# a `provider/model` rung of one of them whose key is set passes without importing litellm, which
# takes seconds; anything else, or a missing key, is asked of litellm (its words in the error).
ONLY_A_KEY = {
    provider: KEY_ENV[provider]
    for provider in ("openai", "anthropic", "mistral", "groq", "deepseek", "openrouter", "xai")
}


def _key_is_set(model: str) -> bool:
    provider, slash, name = model.partition("/")
    key = ONLY_A_KEY.get(provider) if slash and name else None
    return bool(key and os.environ.get(key))


def check_rungs(rungs: Iterable[RungConfig]) -> None:
    """Every rung's problem at once, as one ConfigError; each distinct rung checked once."""
    seen: set[tuple[str, str, str | None]] = set()
    problems = []
    for rung in rungs:
        key = (rung.name, rung.model, rung.api_base)
        if key in seen:
            continue
        seen.add(key)
        problem = rung_problem(rung)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError("; ".join(problems))
