"""Maps litellm's exceptions onto cascade's ModelError tree, at the one boundary where they
occur. Every litellm exception class is named in `LITELLM_ACTIONS`; a test fails when litellm
adds one, so a new failure mode is decided on, not guessed. Each error also carries its fault
kind (`cascade.errors`), which tells the ladder how to answer it.

    litellm                                               cascade
    RateLimitError (429)                            ->    RateLimited (retry_after from headers)
    Timeout, APIConnectionError,
    InternalServerError, ServiceUnavailableError,
    BadGatewayError (and APIError by its status)    ->    TransientFault: timeout|connection|server
    (no litellm error) the call's deadline passed   ->    TransientFault: timeout      `overran`
    (no litellm error) a body that is empty or not
    JSON, no choices, no or empty content           ->    TransientFault: server       `unreadable`
    ContextWindowExceededError                      ->    ContextTooLong (climb to a larger window)
    ContentPolicyViolationError, cassette miss,
    (no litellm error) an answer over the size cap  ->    Refused (climb)              `oversized`
    AuthenticationError, PermissionDeniedError,
    NotFoundError, BadRequestError (the rest) ...   ->    Misconfigured: auth|not_found|bad_request

The most specific class wins: the exception's MRO is walked, so ContextWindowExceededError
(a BadRequestError subclass) escalates while a plain BadRequestError stops. A 2xx answer with
nothing readable in it is the provider's fault, never the model's format failure: only an
answer with text is the model's to get right.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from typing import Final, Literal

from cascade.config import RungConfig
from cascade.errors import (
    ContextTooLong,
    Misconfigured,
    ModelAction,
    ModelError,
    RateLimited,
    Refused,
    TransientFault,
    make_fault,
    renamed,
)
from cascade.records import FaultKind

# "status": decide by the HTTP status the exception carries (these classes are generic).
Action = ModelAction | Literal["status"]

LITELLM_ACTIONS: Final[Mapping[str, Action]] = {
    # retry on the same rung: asking again later may work
    "RateLimitError": "retry",
    "CallerCredentialRateLimitError": "retry",
    "RouterRateLimitError": "retry",
    "RouterRateLimitErrorBasic": "retry",
    "Timeout": "retry",
    "APIConnectionError": "retry",
    "InternalServerError": "retry",
    "ServiceUnavailableError": "retry",
    "MidStreamFallbackError": "retry",
    "BadGatewayError": "retry",
    "APIResponseValidationError": "retry",  # the provider sent a malformed response
    # escalate: this rung cannot answer this prompt; a stronger one may
    "ContextWindowExceededError": "escalate",
    "ContentPolicyViolationError": "escalate",
    "RejectedRequestError": "escalate",
    "UnprocessableEntityError": "escalate",
    "JSONSchemaValidationError": "escalate",
    # stop: the configuration is wrong; asking again, or higher, will not help
    "AuthenticationError": "stop",
    "CallerCredentialAuthenticationError": "stop",
    "EndpointNotSupportedByModelError": "stop",
    "UnsupportedEndpointError": "stop",
    "MalformedRequestFieldError": "stop",
    "PermissionDeniedError": "stop",
    "NotFoundError": "stop",
    "BadRequestError": "stop",
    "InvalidRequestError": "stop",
    "UnsupportedParamsError": "stop",
    "LiteLLMUnknownProvider": "stop",
    "PaymentRequiredError": "stop",
    "BudgetExceededError": "stop",
    "ModelNotMappedError": "stop",
    "ImageFetchError": "stop",
    "VectorStoreSearchError": "stop",
    "BlockedPiiEntityError": "stop",
    "GuardrailRaisedException": "stop",  # litellm guardrails/proxy hooks: not retryable
    "ModifyResponseException": "stop",
    "SensitiveDataRouteException": "stop",
    "ToolLoopMaxRoundsExceeded": "stop",
    # generic bases: the status code decides
    "APIError": "status",
    "MockException": "status",
    "OpenAIError": "status",
}

KEY_ENV: Final[Mapping[str, str]] = {
    "openai": "OPENAI_API_KEY",
    "text-completion-openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "azure": "AZURE_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "xai": "XAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "cohere_chat": "COHERE_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
}


# The fault kind of the classes whose name says it; the rest are named by action and status.
_KIND_BY_CLASS: Final[Mapping[str, FaultKind]] = {
    "RateLimitError": "rate_limit",
    "CallerCredentialRateLimitError": "rate_limit",
    "RouterRateLimitError": "rate_limit",
    "RouterRateLimitErrorBasic": "rate_limit",
    "Timeout": "timeout",
    "APIConnectionError": "connection",
    "ContextWindowExceededError": "context_window",
    "AuthenticationError": "auth",
    "CallerCredentialAuthenticationError": "auth",
    "PermissionDeniedError": "auth",
    "NotFoundError": "not_found",
    "LiteLLMUnknownProvider": "not_found",
    "ModelNotMappedError": "not_found",
    "BadRequestError": "bad_request",
    "InvalidRequestError": "bad_request",
    "UnsupportedParamsError": "bad_request",
    "MalformedRequestFieldError": "bad_request",
}


def litellm_action(exc: BaseException) -> Action | None:
    """The table's action for the most specific litellm class of `exc`, or None."""
    for cls in type(exc).__mro__:
        if cls.__module__.startswith("litellm") and cls.__name__ in LITELLM_ACTIONS:
            return LITELLM_ACTIONS[cls.__name__]
    return None


def _by_status(exc: BaseException) -> ModelAction:
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        return "retry"  # no HTTP answer at all: a connection-level fault
    if status in (408, 409, 429) or status >= 500:
        return "retry"
    return "stop"


def cascade_error_inside(exc: BaseException) -> ModelError | None:
    """A ModelError raised inside our own custom provider (a cassette miss) reaches us wrapped
    in a litellm exception; find it in the chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ModelError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def to_model_error(exc: Exception, rung: RungConfig) -> ModelError:
    """The cascade error for an exception raised by `litellm.acompletion` on `rung`."""
    inner = cascade_error_inside(exc)
    if inner is not None:
        name = inner.rung or rung.name
        return renamed(inner, f"rung {name!r}: {inner}", name)
    if unreadable_answer(exc):
        return unreadable(rung, f"the body is not JSON: {_short(str(exc))}")
    found = litellm_action(exc)
    action: ModelAction
    if found == "status" or (found is None and hasattr(exc, "status_code")):
        action = _by_status(exc)
    elif found is None:
        action = "stop"  # not a fault we know: surface it rather than pay for a higher rung
    else:
        action = found
    detail = f"{type(exc).__name__}: {_short(str(exc))}"
    where = _where(rung)
    # litellm reports a missing OpenAI key as InternalServerError("Missing credentials..."):
    # retrying cannot fix that.
    if action == "retry" and "missing credentials" in str(exc).lower():
        action = "stop"
    kind = fault_kind_of(exc, action)
    if kind == "rate_limit":
        wait = retry_after(exc)
        return RateLimited(f"{where}: rate limited ({detail})", rung=rung.name, retry_after=wait)
    if action == "retry":
        message = f"{where}: transient provider fault, retrying may help ({detail})"
        return make_fault(
            TransientFault, message, rung=rung.name, retry_after=retry_after(exc), fault=kind
        )
    if kind == "context_window":
        return ContextTooLong(
            f"{where}: the prompt exceeds its context window ({detail})", rung=rung.name
        )
    if action == "escalate":
        return Refused(f"{where}: this rung cannot answer ({detail})", rung=rung.name)
    message = f"{where}: {_what_to_check(exc, rung)} The provider said: {detail}"
    return make_fault(Misconfigured, message, rung=rung.name, fault=kind)


def fault_kind_of(exc: BaseException, action: ModelAction) -> FaultKind:
    """The kind of fault: by the most specific litellm class that names one, else by the HTTP
    status, else by the action."""
    if "missing credentials" in str(exc).lower():
        return "auth"
    for cls in type(exc).__mro__:
        if cls.__module__.startswith("litellm") and cls.__name__ in _KIND_BY_CLASS:
            return _KIND_BY_CLASS[cls.__name__]
    status = getattr(exc, "status_code", None)
    by_status: dict[int, FaultKind] = {
        429: "rate_limit", 408: "timeout", 401: "auth", 403: "auth", 404: "not_found",
        400: "bad_request", 422: "bad_request",
    }  # fmt: skip
    if isinstance(status, int) and status in by_status:
        return by_status[status]
    if action == "retry":
        # A refused connection to an openai/-style server surfaces as InternalServerError.
        connection = not isinstance(status, int) or "connection error" in str(exc).lower()
        return "connection" if connection else "server"
    return "refused" if action == "escalate" else "unknown"


def overran(rung: RungConfig, timeout: float, grace: float) -> ModelError:
    """The call's hard deadline passed: litellm times each read, not the call, so a server that
    drips its answer is cut off here. A timeout, retried like litellm's own."""
    message = (
        f"{_where(rung)}: transient provider fault, retrying may help (no complete answer "
        f"within the call's deadline of {timeout + grace:g}s: timeout {timeout:g}s + "
        f"{grace:g}s grace)"
    )
    return make_fault(TransientFault, message, rung=rung.name, fault="timeout")


def unreadable(rung: RungConfig, why: str) -> ModelError:
    """The provider answered 2xx with nothing to read: a server fault, retried, then the ladder
    climbs. Never the model's format failure: the model never got to answer."""
    message = f"{_where(rung)}: transient provider fault, retrying may help (no answer: {why})"
    return make_fault(TransientFault, message, rung=rung.name, fault="server")


def oversized(rung: RungConfig, chars: int) -> ModelError:
    """An answer over `rung.max_answer_chars`: refused, so the ladder climbs. Asking the same
    endpoint again would likely download (and pay for) the same flood; another rung may answer.
    The message names the size only, so nothing of the answer is kept."""
    message = (
        f"{_where(rung)}: this rung cannot answer (an answer of {chars:,} characters, over "
        f"max_answer_chars {rung.max_answer_chars:,}; none of it was kept)"
    )
    return Refused(message, rung=rung.name)


def _where(rung: RungConfig) -> str:
    return f"rung {rung.name!r} (model {rung.model!r})"


def unreadable_answer(exc: BaseException) -> bool:
    """True when the provider answered but its body could not be read as JSON (an empty body, a
    truncated one): litellm raises InternalServerError for it, with the JSON error in the chain.
    A real 5xx fails on its status first and never reaches the JSON parser. Either way it is a
    server fault; this one gets `unreadable`'s message, which says what the body was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, json.JSONDecodeError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _what_to_check(exc: BaseException, rung: RungConfig) -> str:
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    auth = name in ("AuthenticationError", "PermissionDeniedError") or status in (401, 403)
    if auth or "missing credentials" in str(exc).lower():
        hint = f"Check {_key_env(rung.model)}"
        return hint + (f" and api_base {rung.api_base!r}." if rung.api_base else ".")
    if name in ("NotFoundError", "LiteLLMUnknownProvider") or status == 404:
        return f"Check the model string {rung.model!r} (a litellm `provider/model`)."
    return f"Check the model string {rung.model!r} and the rung's settings."


def _key_env(model: str) -> str:
    """The environment variable holding the provider's API key, as well as litellm knows."""
    import litellm

    try:
        missing = litellm.validate_environment(model=model).get("missing_keys") or []
        provider = litellm.get_llm_provider(model=model)[1]
    except Exception:  # an unknown model string: no provider to name
        return "the provider's API key environment variable"
    if missing:
        return f"{', '.join(missing)} (not set)"
    return KEY_ENV.get(provider, f"the API key environment variable for provider {provider!r}")


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (`retry-after-ms`, `retry-after`), if it did."""
    for source in (getattr(exc, "litellm_response_headers", None), _response_headers(exc)):
        if not source:
            continue
        headers = {str(k).lower(): str(v) for k, v in source.items()}
        if "retry-after-ms" in headers:
            try:
                return max(float(headers["retry-after-ms"]) / 1000.0, 0.0)
            except ValueError:
                pass
        if "retry-after" in headers:
            return _parse_retry_after(headers["retry-after"])
    return None


def _response_headers(exc: BaseException) -> Mapping[str, str] | None:
    try:  # openai's `response` property may raise when no response was attached
        response = getattr(exc, "response", None)
    except Exception:
        return None
    headers = getattr(response, "headers", None)
    return headers if isinstance(headers, Mapping) else None


def _parse_retry_after(value: str) -> float | None:
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


_PREFIX: Final = re.compile(r"^(?:litellm\.)?\w+(?:Error|Exception|Timeout): ")


def _short(text: str, limit: int = 300) -> str:
    """One line, without litellm's repeated `litellm.XError: XError:` prefixes."""
    text = " ".join(text.split())
    while (match := _PREFIX.match(text)) is not None:
        text = text[match.end() :]
    text = text.rstrip(".")
    return text if len(text) <= limit else text[: limit - 1] + "…"
