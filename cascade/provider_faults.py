"""Provider faults by kind: the `ModelError` subclasses `cascade.models.faults` raises, so the
ladder can answer each one (wait and retry, climb to a larger context window, stop) and the proof
can name it. They sit beside `cascade.errors`, below every adapter, so fakes can raise them too.

    ProviderRetry      RateLimited (rate_limit), TransientFault (timeout, connection, server)
    ProviderEscalate   ContextTooLong (context_window), Refused (refused)
    ProviderStop       Misconfigured (auth, not_found, bad_request, unknown)
"""

from __future__ import annotations

from typing import get_args

from cascade.errors import ModelAction, ModelError, ProviderEscalate, ProviderRetry, ProviderStop
from cascade.records import FaultKind

_KINDS: dict[str, FaultKind] = {kind: kind for kind in get_args(FaultKind)}
_BY_ACTION: dict[ModelAction, FaultKind] = {
    "retry": "server",
    "escalate": "refused",
    "stop": "unknown",
}


class RateLimited(ProviderRetry):
    fault: FaultKind = "rate_limit"


class TransientFault(ProviderRetry):
    """A timeout, a refused connection or a 5xx: asking again may work."""

    fault: FaultKind = "server"


class ContextTooLong(ProviderEscalate):
    fault: FaultKind = "context_window"


class Refused(ProviderEscalate):
    """The rung will not answer this prompt (content policy, a cassette without the answer)."""

    fault: FaultKind = "refused"


class Misconfigured(ProviderStop):
    """Auth, an unknown model, a bad request: asking again, or higher, will not help."""

    fault: FaultKind = "unknown"


def make_fault(
    cls: type[ModelError],
    message: str,
    *,
    rung: str = "",
    retry_after: float | None = None,
    fault: FaultKind | None = None,
) -> ModelError:
    """An instance of `cls`, its kind overriding the class default when given."""
    error = cls(message, rung=rung, retry_after=retry_after)
    if fault is not None:
        # A plain ModelError has no `fault` attribute of its own; `fault_kind` reads it anyway.
        error.fault = fault  # type: ignore[attr-defined]
    return error


def renamed(error: ModelError, message: str, rung: str) -> ModelError:
    """The same fault, kind kept, with a new message and rung (a fault from inside a provider)."""
    return make_fault(
        type(error), message, rung=rung, retry_after=error.retry_after, fault=fault_kind(error)
    )


def fault_kind(exc: ModelError) -> FaultKind:
    """The fault's kind; a plain ModelError (a fake, an old adapter) is named by its action."""
    return _KINDS.get(str(getattr(exc, "fault", "")), _BY_ACTION[exc.action])
