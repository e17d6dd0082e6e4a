"""One error root for broken infrastructure and bad input; a failed gate is data, not an error.

CascadeError                      exit_code
├── UsageError                    2   bad flags, bad config, missing issue
│   ├── ConfigError                   names the key and the file
│   │   └── GateConfigError               a gate's tool cannot run on this repository as set up
│   └── IssueError                    names the file and the field
├── InfraError                    3   the machinery failed, not the model
│   ├── SandboxError
│   └── SourceError                   the issue source could not be reached
├── EditError                     -   the model's answer could not be applied (feedback)
└── ModelError                    -   a provider fault; `action` tells the ladder what to do
    ├── ProviderRetry                 retry on the same rung
    │   ├── RateLimited                   rate_limit
    │   └── TransientFault                timeout, connection, server (5xx)
    ├── ProviderEscalate              leave this rung
    │   ├── ContextTooLong                context_window
    │   └── Refused                       refused (content policy, no cassette answer, too long)
    └── ProviderStop              3   stop the run
        └── Misconfigured                 auth, not_found, bad_request, unknown

The provider faults by kind are what `cascade.models.faults` raises at the litellm boundary, so
the ladder can answer each one and the proof can name it; they live here, below every adapter,
so fakes can raise them too.

A GateConfigError is found inside a run, at the gate's baseline (a tool that stops at the base
commit the same way every time): the run stops at once, its outcome is an error with exit 2,
and trying again is pointless, so the engine does not, unlike an InfraError.
"""

from __future__ import annotations

from typing import Literal, get_args

from cascade.records import FaultKind

ModelAction = Literal["retry", "escalate", "stop"]


class CascadeError(Exception):
    """Root of every error cascade raises on purpose."""

    exit_code = 3


class UsageError(CascadeError):
    exit_code = 2


class ConfigError(UsageError):
    """A config file or value is wrong; the message names the key and where it came from."""


class GateConfigError(ConfigError):
    """An evaluator's tool fails deterministically at the base commit with the configuration it
    was given (the repository's or cascade's); the message names the setting to change."""


class IssueError(UsageError):
    """An issue is missing or malformed; the message names the file and the field."""


class InfraError(CascadeError):
    exit_code = 3


class SandboxError(InfraError):
    """The sandbox could not be opened, reset, or run a command."""


class SourceError(InfraError):
    """The issue source could not be reached."""


class EditError(CascadeError):
    """The model's answer could not be turned into edits or applied; `feedback` is for the model."""

    def __init__(self, feedback: str) -> None:
        super().__init__(feedback)
        self.feedback = feedback


class ModelError(CascadeError):
    """A provider fault. `action` says what the ladder does with it."""

    action: ModelAction = "escalate"
    fault: FaultKind | None = None  # the kind, when the class (or `make_fault`) names one

    def __init__(self, message: str, *, rung: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.rung = rung
        self.retry_after = retry_after


class ProviderRetry(ModelError):
    action: ModelAction = "retry"


class ProviderEscalate(ModelError):
    action: ModelAction = "escalate"


class ProviderStop(ModelError):
    action: ModelAction = "stop"
    exit_code = 3


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
        error.fault = fault
    return error


def renamed(error: ModelError, message: str, rung: str) -> ModelError:
    """The same fault, kind kept, with a new message and rung (a fault from inside a provider)."""
    return make_fault(
        type(error), message, rung=rung, retry_after=error.retry_after, fault=fault_kind(error)
    )


def fault_kind(exc: ModelError) -> FaultKind:
    """The fault's kind; a ModelError that names none (a fake, an old adapter) is named by its
    action."""
    return exc.fault if exc.fault in _KINDS else _BY_ACTION[exc.action]
