"""One error root for broken infrastructure and bad input; a failed gate is data, not an error.

CascadeError                      exit_code
├── UsageError                    2   bad flags, bad config, missing issue
│   ├── ConfigError                   names the key and the file
│   └── IssueError                    names the file and the field
├── InfraError                    3   the machinery failed, not the model
│   ├── SandboxError
│   └── SourceError                   the issue source could not be reached
├── EditError                     -   the model's answer could not be applied (feedback)
└── ModelError                    -   a provider fault; `action` tells the ladder what to do
    ├── ProviderRetry                 retry on the same rung (rate limit, timeout, 5xx)
    ├── ProviderEscalate              leave this rung (context window, cassette miss)
    └── ProviderStop              3   stop the run (auth, unknown model, bad request)
"""

from __future__ import annotations

from typing import Literal

ModelAction = Literal["retry", "escalate", "stop"]


class CascadeError(Exception):
    """Root of every error cascade raises on purpose."""

    exit_code = 3


class UsageError(CascadeError):
    exit_code = 2


class ConfigError(UsageError):
    """A config file or value is wrong; the message names the key and where it came from."""


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
