"""Puts a runnable engine together from a loaded configuration: one model per rung (with an
optional recorder), the gate, the sandbox backend. `cascade fix`, batch replay and the CI entry
point all start here, so they run the same engine the same way."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cascade.config import RungConfig
from cascade.core.baseline_store import BaselineStore
from cascade.core.budget import Purse
from cascade.core.context import litellm_counter
from cascade.core.engine import Engine
from cascade.core.events import Event
from cascade.core.gate import Gate
from cascade.core.localised import Localising
from cascade.core.reproduce import ReproduceStage
from cascade.core.workflows import Workflow
from cascade.errors import ConfigError
from cascade.models import Recorder, build_model
from cascade.models.preflight import check_rungs
from cascade.protocols import Model
from cascade.wiring.registry import (
    build_gate,
    build_reproduction_gate,
    choose_backend,
    sandbox_opener,
)
from cascade.wiring.rung_zero import build_localising, build_repair
from cascade.wiring.settings import LoadedConfig
from cascade.wiring.workflows import build_workflows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parts:
    """What every run of one configuration shares."""

    loaded: LoadedConfig
    models: Mapping[str, Model]  # rung name -> model
    gate: Gate
    backend: str  # "docker", "local", or an entry-point name
    purse: Purse | None = None  # money shared by every run of a batch ([budget] batch cap)
    reproduce: ReproduceStage | None = None  # the test-first stage ([reproduce] when != never)
    workflows: tuple[Workflow, ...] = ()  # `[[workflows]]`, built, in matching order
    store: BaselineStore | None = None  # baselines kept across runs ([run] baseline_cache)
    localising: Localising | None = None  # fault localisation ([localise])

    def engine(
        self,
        run_id: str,
        on_event: Callable[[Event], None] | None = None,
        *,
        start_at: str | None = None,
    ) -> Engine:
        """An engine for one run; its sandboxes are labelled with `run_id`."""
        cfg = self.loaded.config
        return Engine(
            ladder=cfg.ladder,
            models=self.models,
            gate=self.gate,
            open_sandbox=sandbox_opener(cfg.sandbox, self.backend, run_id, _opening(on_event)),
            counter=lambda rung: litellm_counter(rung.model),
            feedback_chars=cfg.run.feedback_chars,
            on_event=on_event or (lambda _event: None),
            policy=cfg.policy,
            budget=cfg.budget,
            workflows=self.workflows,
            baseline_store=self.store.for_run(run_id) if self.store else None,
            overlap_baseline=cfg.run.overlap_baseline,
            localising=self.localising,
            purse=self.purse,
            start_at=start_at,
            reproduce=self.reproduce,
        )


def _opening(on_event: Callable[[Event], None] | None) -> Callable[[str], None] | None:
    """Lines a sandbox shows while it opens (`[sandbox] setup`'s), as the run's `open` events."""
    if on_event is None:
        return None
    return lambda line: on_event(Event("open", line))


def assemble(loaded: LoadedConfig, *, record: Path | None = None) -> Parts:
    """Build the models (cassettes are read now, so a bad one fails before any work), the gate,
    the reproduce stage and the backend (`auto` asks the Docker engine once)."""
    cfg = loaded.config
    # Credentials and model strings first: a wrong one costs nothing but this check.
    check_rungs([*cfg.ladder, *cfg.reproduce.ladder])
    recorder = Recorder(record.resolve()) if record else None

    def models_for(ladder: tuple[RungConfig, ...]) -> dict[str, Model]:
        return {
            r.name: build_repair(r, cfg)
            if r.is_repair
            else build_model(r, config_dir=loaded.config_dir, recorder=recorder)
            for r in ladder
        }

    models = models_for(cfg.ladder)
    cap = cfg.budget.batch_max_cost_usd
    purse = Purse(cap) if cap else None
    stage = None
    wanted = [cfg.reproduce.when, *(f.proof.reproduce or cfg.reproduce.when for f in cfg.lanes)]
    judge = build_reproduction_gate(cfg) if set(wanted) - {"never"} else None
    own = models_for(cfg.reproduce.ladder) if cfg.reproduce.ladder and judge else models
    if cfg.reproduce.when != "never" and judge is not None:
        stage = ReproduceStage(
            ladder=cfg.reproduce_ladder,
            models=own,
            gate=judge,
            when=cfg.reproduce.when,
            independent=cfg.reproduce.independent,
        )
    backend = choose_backend(cfg.sandbox)
    agents = [r.name for r in cfg.ladder if r.mode == "agent"]
    if agents and backend == "local":
        raise ConfigError(
            f"{', '.join(map(repr, agents))}: an agent rung runs the model's commands, and the "
            "local sandbox would run them on this machine, unconfined. Agent rungs need the "
            "Docker sandbox: a running Docker engine and `cascade sandbox build`."
        )
    if backend == "docker":
        from sandboxes.cleanup import collect_left_behind
        from sandboxes.docker_api import DockerOptions

        DockerOptions.from_config(cfg.sandbox)  # a misspelt option fails here, before any run

        for removed in collect_left_behind():
            log.info("removed %s, left by an earlier run", removed)
    gate = build_gate(cfg.gate)
    workflows = build_workflows(loaded, gate, {**models, **own}, judge)
    if backend == "local":
        # The project's own interpreter runs the gate: it must have the gate's tools.
        from sandboxes.local_python import check_tools, find_interpreter

        names = {n for g in (gate, *(w.gate for w in workflows)) for n in g.names}
        modules = [m for name in sorted(names) for m in TOOL_MODULES.get(name, ())]
        modules += ["pytest"] if judge is not None else []
        check_tools(find_interpreter(loaded.repo, cfg.sandbox), modules)
    store = None
    if cfg.run.baseline_cache:
        store = BaselineStore.open(loaded.repo / ".cascade" / "cache" / "baselines")
    return Parts(
        loaded, models, gate, backend, purse, stage, workflows, store, build_localising(cfg)
    )


# What each built-in evaluator runs with the sandbox's `python -m`.
TOOL_MODULES: dict[str, tuple[str, ...]] = {
    "pytest": ("pytest",),
    "coverage": ("coverage", "pytest"),
    "ruff": ("ruff",),
    "mypy": ("mypy",),
}
