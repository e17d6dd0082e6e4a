"""Fakes shipped with the package, for tests and for trying the engine without a provider or
Docker: a scripted model (`models`), an in-memory issue source (`sources`), a sandbox over a git
checkout folder (`sandbox`) and real git repository builders (`repos`). Each honours the same
protocol as the real adapters; the model keeps every prompt and the sandbox every command."""

from __future__ import annotations

from cascade.testing.models import Answer, ScriptedModel
from cascade.testing.repos import git, make_repo
from cascade.testing.sandbox import DirectorySandbox
from cascade.testing.sources import MemoryIssueSource

__all__ = ["Answer", "DirectorySandbox", "MemoryIssueSource", "ScriptedModel", "git", "make_repo"]
