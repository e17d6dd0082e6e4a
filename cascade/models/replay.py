"""The `replay/` provider: serves cassette answers through litellm as a custom provider, so a
replayed call is costed by the same code path as a real one.

Importing this module imports litellm (seconds): import it only from inside functions.
How a call finds its answer: `LitellmModel` passes `metadata={"cascade_replay": {...}}` to
`litellm.acompletion`; litellm hands it to the provider as `litellm_params["metadata"]`.
"""

from __future__ import annotations

from typing import Any, TypedDict

import anyio
import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import ModelResponse
from litellm.types.utils import Usage as LitellmUsage

from cascade.config import RungConfig
from cascade.errors import ProviderEscalate
from cascade.models.cassette import Cassette
from cascade.records import CallRole

PROVIDER = "replay"
METADATA_KEY = "cascade_replay"


class ReplayRequest(TypedDict):
    """What one replayed call asks for, carried in the call's metadata."""

    cassette: str  # the resolved path of a cassette installed in the handler
    rung: str
    model: str  # the rung's model string, `replay/<name>`
    task: str
    attempt: int
    sample: int
    role: CallRole
    step: int


class ReplayHandler(CustomLLM):
    """The one `replay` provider in `litellm.custom_provider_map`; it holds the cassettes and
    prices installed so far, so installing again is a no-op."""

    def __init__(self) -> None:
        super().__init__()
        self._cassettes: dict[str, Cassette] = {}
        self._prices: dict[str, tuple[float, float]] = {}

    def add(self, cassette: Cassette, rung: RungConfig) -> None:
        self._cassettes[str(cassette.path)] = cassette
        # The rung's override prices, else 0: litellm's response_cost is then exact.
        price = (rung.input_cost_per_token or 0.0, rung.output_cost_per_token or 0.0)
        if self._prices.get(rung.model) != price:
            litellm.register_model(
                {
                    rung.model: {
                        "litellm_provider": PROVIDER,
                        "mode": "chat",
                        "input_cost_per_token": price[0],
                        "output_cost_per_token": price[1],
                        # Named so litellm does not warn that cache prices are missing.
                        "cache_creation_input_token_cost": 0.0,
                        "cache_read_input_token_cost": 0.0,
                    }
                }
            )
            self._prices[rung.model] = price

    def _serve(self, kwargs: dict[str, Any]) -> tuple[ModelResponse, float]:
        """The response for one call, and the simulated latency its cassette line asks for."""
        litellm_params = kwargs.get("litellm_params") or {}
        request: ReplayRequest | None = (litellm_params.get("metadata") or {}).get(METADATA_KEY)
        if request is None:
            raise ProviderEscalate(
                f"model replay/{kwargs.get('model')} was called without cascade's replay "
                "metadata; replay models are served only through LitellmModel"
            )
        cassette = self._cassettes.get(request["cassette"])
        if cassette is None:
            raise ProviderEscalate(
                f"cassette {request['cassette']} is not installed", rung=request["rung"]
            )
        entry = cassette.answer(
            request["task"], request["model"], request["attempt"],
            sample=request.get("sample", 1), rung=request["rung"],
            role=request.get("role", "fix"), step=request.get("step", 0),
        )  # fmt: skip
        response: ModelResponse = kwargs["model_response"]
        response.choices[0].message.content = entry.content
        response.model = request["model"]
        usage = LitellmUsage(
            prompt_tokens=entry.usage.prompt_tokens,
            completion_tokens=entry.usage.completion_tokens,
            total_tokens=entry.usage.prompt_tokens + entry.usage.completion_tokens,
        )
        setattr(response, "usage", usage)  # noqa: B010 - `usage` is not a declared field
        return response, entry.latency_s

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        # Sync callers (none in cascade) get the answer at once: blocking a thread to simulate
        # latency would only slow them down, not model anything.
        return self._serve(kwargs)[0]

    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        response, latency = self._serve(kwargs)
        if latency:
            # Yields to the event loop like a real network wait, so concurrent calls overlap.
            await anyio.sleep(latency)
        return response


def install(cassette: Cassette, rung: RungConfig) -> None:
    """Make `rung`'s replay model answerable from `cassette`. Idempotent."""
    handler: ReplayHandler | None = None
    for item in litellm.custom_provider_map:
        if item["provider"] == PROVIDER and isinstance(item["custom_handler"], ReplayHandler):
            handler = item["custom_handler"]
    if handler is None:
        handler = ReplayHandler()
        litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": handler})
    handler.add(cassette, rung)


def request_metadata(
    cassette: Cassette,
    rung: RungConfig,
    task: str,
    attempt: int,
    sample: int = 1,
    *,
    role: CallRole = "fix",
    step: int = 0,
) -> dict[str, Any]:
    request = ReplayRequest(
        cassette=str(cassette.path), rung=rung.name, model=rung.model, task=task,
        attempt=attempt, sample=sample, role=role, step=step,
    )  # fmt: skip
    return {METADATA_KEY: request}
