"""The resolved configuration: pydantic models only. Loading, layering and provenance live in
`cascade.settings`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RungConfig(Section):
    name: str
    model: str  # a litellm model string; `replay/<name>` is served from `cassette`
    attempts: int = Field(default=1, ge=1, le=20)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=4096, ge=1)
    context_tokens: int = Field(default=12000, ge=500)  # budget for the prompt's context
    timeout: float = Field(default=120.0, gt=0)  # seconds per call; always passed explicitly
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    api_base: str | None = None
    cassette: str | None = None  # path, relative to the config file's folder

    @model_validator(mode="after")
    def _replay_needs_cassette(self) -> RungConfig:
        if self.model.startswith("replay/") and not self.cassette:
            raise ValueError(f'rung {self.name!r}: a replay/ model needs `cassette = "FILE"`')
        return self

    @property
    def is_replay(self) -> bool:
        return self.model.startswith("replay/")


class SandboxConfig(Section):
    backend: Literal["auto", "docker", "local"] = "auto"
    command_timeout: float = Field(default=600.0, gt=0)
    image: str = "cascade-sandbox:latest"
    # Commands run once per repository environment (e.g. `pip install -e .[test]`), cached as an
    # image layer keyed by the base image, these commands and the repo's dependency files.
    setup: tuple[str, ...] = ()
    options: dict[str, Any] = Field(default_factory=dict)  # backend-specific settings


class PytestConfig(Section):
    args: tuple[str, ...] = ()
    timeout: float = Field(default=600.0, gt=0)
    run_full_suite: bool = True


class GateConfig(Section):
    evaluators: tuple[str, ...] = ("pytest",)
    pytest: PytestConfig = PytestConfig()
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per-evaluator extras


class IssuesConfig(Section):
    source: str = "files"
    dir: str = ".cascade/issues"


class RunConfig(Section):
    out: str = ".cascade/runs"
    feedback_chars: int = Field(default=4000, ge=200)


def _default_ladder() -> tuple[RungConfig, ...]:
    return (
        RungConfig(name="cheap", model="gpt-4o-mini", attempts=2),
        RungConfig(name="strong", model="gpt-4o", attempts=2),
    )


class CascadeConfig(Section):
    ladder: tuple[RungConfig, ...] = Field(default_factory=_default_ladder, min_length=1)
    sandbox: SandboxConfig = SandboxConfig()
    gate: GateConfig = GateConfig()
    issues: IssuesConfig = IssuesConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="after")
    def _unique_rungs(self) -> CascadeConfig:
        names = [r.name for r in self.ladder]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"ladder rung names must be unique; repeated: {', '.join(dupes)}")
        return self

    def rung(self, name: str) -> RungConfig:
        for r in self.ladder:
            if r.name == name:
                return r
        raise KeyError(name)
