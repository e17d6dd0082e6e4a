"""The starter configuration `cascade init` writes: a commented cascade.toml whose ladder is
built from what this machine can reach — a local Ollama if it answers, then every provider whose
API key is set, cheap to strong by litellm's price map — and the default gate. Detection is
separate from rendering, so the rendering is tested without a network and the detection against
a loopback server."""

from __future__ import annotations

import json
import re
import tomllib
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cascade.config import GateConfig, default_ladder
from cascade.core.prices import map_info, unit_prices
from cascade.errors import UsageError

OLLAMA_URL = "http://localhost:11434"
MAX_HOSTED = 4  # rungs from hosted providers: the cheapest three and the strongest

# (API key variable, cheap model, strong model): litellm model strings, each kept only when
# litellm's price map knows it. Reasoning-only models are left out: they refuse temperature 0.
PROVIDERS: tuple[tuple[str, str, str], ...] = (
    ("OPENAI_API_KEY", "openai/gpt-4.1-mini", "openai/gpt-4.1"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5"),
    ("GEMINI_API_KEY", "gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro"),
    ("DEEPSEEK_API_KEY", "deepseek/deepseek-chat", ""),
    ("MISTRAL_API_KEY", "mistral/codestral-latest", "mistral/mistral-large-latest"),
)


@dataclass(frozen=True)
class RungChoice:
    name: str
    model: str
    why: str  # the comment above the rung
    input_cost_per_token: float = 0.0
    output_cost_per_token: float = 0.0
    api_base: str = ""
    local: bool = False


def ollama_models(url: str = OLLAMA_URL, timeout: float = 1.0) -> list[str]:
    """The models a local Ollama serves (`GET /api/tags`), or [] when nothing answers."""
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--ollama-url {url!r}: an http:// or https:// URL, please")
    tags = f"{url.rstrip('/')}/api/tags"
    try:
        with urllib.request.urlopen(tags, timeout=timeout) as reply:  # noqa: S310 - http(s), checked
            data = json.loads(reply.read().decode("utf-8"))
    except (OSError, ValueError):
        return []
    models = data.get("models") if isinstance(data, dict) else None
    names = [str(m.get("name", "")) for m in models or [] if isinstance(m, dict)]
    return [n for n in names if n]


def local_rung(models: Sequence[str], url: str) -> RungChoice | None:
    """One local rung: a coding model when Ollama has one, else its first model."""
    if not models:
        return None
    coder = next((m for m in models if "code" in m.lower()), models[0])
    others = ", ".join(m for m in models if m != coder)
    why = f"local Ollama at {url}: costs nothing" + (f" (also there: {others})" if others else "")
    return RungChoice("local", f"ollama_chat/{coder}", why, api_base=url, local=True)


def hosted_rungs(environ: Mapping[str, str]) -> list[RungChoice]:
    """A rung per known model of every provider whose key is set, cheapest first."""
    found: list[RungChoice] = []
    for env, *models in PROVIDERS:
        if not environ.get(env):
            continue
        for model in filter(None, models):
            prices = unit_prices(model)
            if prices is None or not any(prices):
                continue
            window = map_info(model).get("max_input_tokens")
            why = (
                f"{env} is set · ${prices[0] * 1e6:.2f} in / ${prices[1] * 1e6:.2f} out per "
                f"million tokens (litellm's price map)"
                + (f" · context {int(window):,} tokens" if window else "")
            )
            found.append(RungChoice(_name(model), model, why, prices[0], prices[1]))
    found.sort(key=lambda r: (r.input_cost_per_token + r.output_cost_per_token, r.model))
    if len(found) > MAX_HOSTED:
        found = found[: MAX_HOSTED - 1] + found[-1:]
    return found


def render(rungs: Sequence[RungChoice], available: Sequence[str] = ()) -> str:
    """The commented cascade.toml."""
    gate = GateConfig().evaluators
    lines = [
        "# cascade configuration, written by `cascade init`.",
        "# The ladder runs cheapest first; a rung that fails the gate climbs to the next.",
        "# Check the resolved values with `cascade config show`.",
        "",
    ]
    if not rungs:
        lines += [
            "# No local Ollama answered and no provider API key is set, so this is the default",
            "# ladder: it needs OPENAI_API_KEY. Or start Ollama (ollama serve) and run init again.",
            "",
        ]
        # The same models as the built-in default ladder (cascade/config.py).
        rungs = [RungChoice(r.name, r.model, "needs OPENAI_API_KEY") for r in default_ladder()]
    for rung in rungs:
        lines += [f"# {rung.why}", "[[ladder]]", f'name = "{rung.name}"']
        lines += [f'model = "{rung.model}"', "attempts = 2"]
        if rung.api_base:
            lines.append(f'api_base = "{rung.api_base}"')
        if rung.local:
            lines += ["input_cost_per_token = 0.0", "output_cost_per_token = 0.0"]
            lines.append(
                "# max_input_tokens = 32768   # its context window, if litellm does not know it"
            )
        lines += ["# max_cost_usd = 0.50        # the most this rung may spend on one task", ""]
    lines += [
        "[gate]",
        f"evaluators = [{', '.join(json.dumps(e) for e in gate)}]"
        + (f"   # installed: {', '.join(available)}" if available else ""),
        "",
        "[budget]",
        "# max_cost_usd = 2.00          # per task: a call that could exceed it is not made",
        "# batch_max_cost_usd = 50.00   # for all tasks of a run or batch",
        "",
        "[policy]",
        '# carry_feedback = "last"     # what a later attempt is told: "none", "last", "all"',
        "# provider_retries = 2        # timeouts, refused connections, 5xx, rate limits",
        "# retry_wait_cap_s = 30       # a longer Retry-After climbs at once",
        "# infra_retries = 2           # sandbox or gate-harness failures: never the model's fault",
        "",
        "# [policy.learned_skip]      # skip a rung that rarely verified similar tasks",
        "# enabled = true             # see `cascade ladder stats`",
        "",
        "# [[routing.rules]]          # where a task starts; the first match wins",
        '# labels = ["security"]',
        f'# start_at = "{rungs[-1].name}"',
        "",
    ]
    return "\n".join(lines)


def write(repo: Path, text: str, *, force: bool = False) -> Path:
    """Write `repo/cascade.toml`; refused when it exists, or when `[tool.cascade]` in the
    repository's pyproject.toml already configures cascade (a new cascade.toml would silently
    take its place), unless `force`."""
    path = repo / "cascade.toml"
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    pyproject = repo / "pyproject.toml"
    if not force and pyproject.is_file() and _has_tool_cascade(pyproject):
        raise UsageError(
            f"{pyproject} already configures cascade ([tool.cascade]); a cascade.toml would "
            "replace it, not add to it. Edit that table, or pass --force to write cascade.toml "
            "anyway (or --stdout to see what it would hold)"
        )
    path.write_text(text, encoding="utf-8")
    return path


def _has_tool_cascade(pyproject: Path) -> bool:
    try:
        doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False  # not ours to judge here; loading the config reports it
    return isinstance(doc.get("tool", {}).get("cascade"), dict)


def _name(model: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", model.rsplit("/", 1)[-1].lower()).strip("-")
