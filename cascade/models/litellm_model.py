"""`LitellmModel`: the one network adapter. Every provider, and the `replay/` cassettes, are
reached through `litellm.acompletion`; litellm is imported on first call, never at import.
Each call has a hard deadline and a size cap, and yields text or a classified provider fault."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import anyio

from cascade.config import RungConfig
from cascade.errors import ConfigError
from cascade.models.cassette import Cassette
from cascade.models.faults import overran, oversized, to_model_error, unreadable
from cascade.models.recording import Recorder
from cascade.protocols import Model
from cascade.records import Completion, CompletionParams, Message, Usage

log = logging.getLogger(__name__)

# Set by LitellmModel from the rung and params; extra kwargs may not override them.
_RESERVED: Final = frozenset(
    {"model", "messages", "temperature", "max_tokens", "timeout", "api_base", "num_retries"}
    | {"max_retries", "metadata", "stream"}
)

# The call's hard deadline is its timeout plus this. litellm's timeout bounds each read, not the
# call; on a plain hang its Timeout comes first (within the grace), and the deadline ends what
# per-read timing never does: a server dripping its answer.
DEADLINE_GRACE_S: Final = 1.0
MODEL_NAME_CHARS: Final = 200  # a longer model name in the answer is not kept: the rung's is


def litellm_module() -> ModuleType:
    import litellm

    # litellm prints a "Give Feedback / Get Help" banner on every exception; library code
    # does not print.
    litellm.suppress_debug_info = True
    return litellm


class LitellmModel:
    """A `Model` for one rung. `litellm_kwargs` are passed to every call as they are (tests pass
    litellm's own `mock_response` / `mock_timeout` this way); they cannot override what the rung
    and the params decide."""

    def __init__(
        self,
        rung: RungConfig,
        *,
        cassette: Cassette | None = None,
        recorder: Recorder | None = None,
        litellm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if rung.is_replay and cassette is None:
            raise ConfigError(f"rung {rung.name!r}: model {rung.model!r} needs a cassette")
        clash = sorted(_RESERVED & set(litellm_kwargs or {}))
        if clash:
            raise ConfigError(f"rung {rung.name!r}: litellm_kwargs may not set {clash}")
        self.rung = rung
        self._cassette = cassette
        self._recorder = recorder
        self._extra = dict(litellm_kwargs or {})
        self._installed = False

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        litellm = litellm_module()
        kwargs: dict[str, Any] = {
            **self._extra,
            "model": self.rung.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "timeout": params.timeout,  # always explicit: litellm's defaults are 600 s and more
            "num_retries": 0,  # one retry layer, and it is the ladder's
        }
        if self.rung.api_base:
            kwargs["api_base"] = self.rung.api_base
        if self._cassette is not None:
            from cascade.models import replay

            if not self._installed:
                replay.install(self._cassette, self.rung)
                self._installed = True
            kwargs["metadata"] = replay.request_metadata(
                self._cassette,
                self.rung,
                params.task_id,
                params.attempt,
                params.sample,
                role=params.role,
                step=params.step,
            )
        started = time.monotonic()
        response: Any = None
        # Cancelling the call closes its connection: an overrun call is abandoned, not left open.
        deadline = anyio.move_on_after(params.timeout + DEADLINE_GRACE_S)
        try:
            with deadline:
                response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            if deadline.cancel_called:  # the deadline's cancellation, surfaced as another error
                raise overran(self.rung, params.timeout, DEADLINE_GRACE_S) from exc
            raise to_model_error(exc, self.rung) from exc
        if deadline.cancelled_caught:
            raise overran(self.rung, params.timeout, DEADLINE_GRACE_S)
        latency = time.monotonic() - started
        # Checked before anything (the recorder, the proof) sees the text.
        text = _content(response)
        if text is None or not text.strip():
            raise unreadable(self.rung, "no choices, or no text in the first one")
        if len(text) > self.rung.max_answer_chars:
            raise oversized(self.rung, len(text))
        model = str(getattr(response, "model", None) or "")
        completion = Completion(
            text=text,
            usage=_usage(response),
            cost_usd=self._cost(litellm, response),
            latency_s=latency,
            model=model if 0 < len(model) <= MODEL_NAME_CHARS else self.rung.model,
        )
        if self._recorder is not None:
            self._recorder.record(self.rung, params, completion)
        return completion

    def _cost(self, litellm: ModuleType, response: Any) -> float:
        """The rung's override prices where set (exact, from usage), else litellm's price map;
        an unknown price is 0.0, never an error."""
        usage = _usage(response)
        in_price, out_price = self.rung.input_cost_per_token, self.rung.output_cost_per_token
        if in_price is not None and out_price is not None:
            return usage.prompt_tokens * in_price + usage.completion_tokens * out_price
        if in_price is None and out_price is None:
            hidden = getattr(response, "_hidden_params", None) or {}
            cost = hidden.get("response_cost")
            if cost is None:
                try:
                    cost = litellm.completion_cost(completion_response=response)
                except Exception as exc:  # litellm raises for a model without a known price
                    log.debug("no price for %s: %s", self.rung.model, exc)
                    cost = 0.0
            return float(cost or 0.0)
        # One override: the other half comes from litellm's price map (0 if unknown).
        try:
            map_in, map_out = litellm.cost_per_token(
                model=self.rung.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        except Exception as exc:
            log.debug("no price for %s: %s", self.rung.model, exc)
            map_in, map_out = 0.0, 0.0
        prompt_cost = usage.prompt_tokens * in_price if in_price is not None else map_in
        completion_cost = usage.completion_tokens * out_price if out_price is not None else map_out
        return float(prompt_cost + completion_cost)


def _content(response: Any) -> str | None:
    """The first choice's text; None when there is no choice, message or text."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    return Usage(
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


def build_model(rung: RungConfig, *, config_dir: Path, recorder: Recorder | None = None) -> Model:
    """The model for one rung; a replay rung's cassette is read now, so a bad file is a
    `ConfigError` before any call is made."""
    cassette = None
    if rung.is_replay:
        if not rung.cassette:  # RungConfig already refuses this; keep the message anyway
            raise ConfigError(f'rung {rung.name!r}: a replay/ model needs `cassette = "FILE"`')
        path = Path(rung.cassette)
        cassette = Cassette.load(path if path.is_absolute() else config_dir / path)
    return LitellmModel(rung, cassette=cassette, recorder=recorder)
